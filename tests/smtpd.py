#!/usr/bin/python3
# SPDX-License-Identifier: ISC
# Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING.
"""A real SMTP server for the tests and the demo, on 127.0.0.1 only.

Each accepted message is stored as MAILDIR/<n>.eml (the bytes received)
and MAILDIR/<n>.json (its envelope), n counting from 1.  Both files are
written to a temporary name and renamed; the .json appears last, so a
reader that sees it may read both.

Run it with Debian's interpreter, /usr/bin/python3: python3-aiosmtpd is
importable from there only.

    smtpd.py --port 2525 --maildir DIR [--reject-rcpt RE] [--defer-rcpt RE]
             [--starttls-cert PEM --starttls-key PEM [--require-starttls]]
             [--auth USER:PASS] [--no-greeting] [--delay-data SECONDS]
             [--pidfile FILE]

--reject-rcpt and --defer-rcpt take a regular expression matched
(case-insensitively, anywhere) against the recipient address: a match is
refused with 550 5.1.1 or deferred with 451 4.3.0.  --auth makes AUTH
(PLAIN or LOGIN) mandatory; with STARTTLS it is only offered after the
handshake.  --no-greeting accepts connections and never says a word.
--delay-data makes the server wait that long after each message's data
before it stores the message and answers (a slow relay).

The envelope file also says on which connection the message came
("connection": the relay's count of TCP connections accepted so far, so
messages that share the number came over one SMTP session) and with which
TLS version ("tls_version", null without TLS).
"""

import argparse
import asyncio
import json
import os
import re
import signal
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    def __init__(self, args):
        self.maildir = args.maildir
        self.reject = re.compile(args.reject_rcpt, re.I) \
            if args.reject_rcpt else None
        self.defer = re.compile(args.defer_rcpt, re.I) \
            if args.defer_rcpt else None
        names = [f[:-5] for f in os.listdir(self.maildir)
                 if f.endswith('.json') and f[:-5].isdigit()]
        self.count = max(map(int, names), default=0)
        self.delay = args.delay_data
        self.active = 0

    async def handle_RCPT(self, server, session, envelope, address,
                          rcpt_options):
        if self.reject and self.reject.search(address):
            return '550 5.1.1 <%s>: Recipient address rejected' % address
        if self.defer and self.defer.search(address):
            return '451 4.3.0 <%s>: Try again later' % address
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return '250 2.1.5 OK'

    async def handle_DATA(self, server, session, envelope):
        # Messages in their DATA phase at once, this one included: how
        # many sessions a client keeps busy.
        self.active += 1
        concurrent = self.active
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        self.count += 1
        base = os.path.join(self.maildir, str(self.count))
        meta = {
            'mail_from': envelope.mail_from,
            'rcpt_tos': envelope.rcpt_tos,
            'mail_options': envelope.mail_options,
            'helo': session.host_name,
            'peer': list(session.peer[:2]) if session.peer else None,
            'tls': session.ssl is not None,
            'auth': session.auth_data.login.decode('utf-8', 'replace')
            if isinstance(session.auth_data, LoginPassword) else None,
            'connection': getattr(server, 'connection', None),
            'tls_version': tls_version(session),
            'concurrent': concurrent,
        }
        write_atomic(base + '.eml', envelope.original_content)
        write_atomic(base + '.json', json.dumps(meta, indent=1).encode())
        return '250 2.0.0 OK queued as %d' % self.count


def tls_version(session):
    """'TLSv1.2' and the like, or None without TLS."""
    obj = session.ssl.get('ssl_object') if session.ssl else None
    return obj.version() if obj is not None else None


class CountingSMTP(SMTP):
    """One instance per TCP connection; numbers them from 1."""
    connections = 0

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        CountingSMTP.connections += 1
        self.connection = CountingSMTP.connections


def write_atomic(path, data):
    tmp = path + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def make_authenticator(user, password):
    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (isinstance(auth_data, LoginPassword) and
              auth_data.login == user.encode() and
              auth_data.password == password.encode())
        if not ok:
            return AuthResult(success=False, handled=False)   # 535 5.7.8
        return AuthResult(success=True, auth_data=auth_data)
    return authenticator


def smtp_options(args, loop):
    kw = {'hostname': 'smtpd.test', 'ident': 'referral-invites test smtpd',
          'loop': loop}
    if args.starttls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(args.starttls_cert, args.starttls_key)
        kw['tls_context'] = ctx
        kw['require_starttls'] = args.require_starttls
    if args.auth:
        user, _, password = args.auth.partition(':')
        kw['authenticator'] = make_authenticator(user, password)
        kw['auth_required'] = True
        kw['auth_require_tls'] = bool(args.starttls_cert)
    return kw


async def silent(reader, writer):
    # Hold the connection open and never greet.
    await reader.read()
    writer.close()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--port', type=int, required=True)
    p.add_argument('--maildir', required=True)
    p.add_argument('--reject-rcpt')
    p.add_argument('--defer-rcpt')
    p.add_argument('--starttls-cert')
    p.add_argument('--starttls-key')
    p.add_argument('--require-starttls', action='store_true')
    p.add_argument('--auth', metavar='USER:PASS')
    p.add_argument('--no-greeting', action='store_true')
    p.add_argument('--delay-data', type=float, default=0, metavar='SECONDS')
    p.add_argument('--pidfile')
    args = p.parse_args(argv)
    if bool(args.starttls_cert) != bool(args.starttls_key):
        p.error('--starttls-cert and --starttls-key go together')
    if args.require_starttls and not args.starttls_cert:
        p.error('--require-starttls needs --starttls-cert')
    if args.delay_data < 0:
        p.error('--delay-data takes a number of seconds, 0 or more')
    if args.auth and ':' not in args.auth:
        p.error('--auth takes USER:PASS')
    return args


def main(argv):
    args = parse_args(argv)
    os.makedirs(args.maildir, exist_ok=True)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    if args.no_greeting:
        coro = asyncio.start_server(silent, '127.0.0.1', args.port)
    else:
        handler = Handler(args)
        kw = smtp_options(args, loop)
        coro = loop.create_server(lambda: CountingSMTP(handler, **kw),
                                  '127.0.0.1', args.port)
    server = loop.run_until_complete(coro)
    if args.pidfile:
        write_atomic(args.pidfile, b'%d\n' % os.getpid())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, loop.stop)
    try:
        loop.run_forever()
    finally:
        server.close()
        if args.pidfile:
            try:
                os.unlink(args.pidfile)
            except OSError:
                pass
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
