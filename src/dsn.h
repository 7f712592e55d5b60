/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * Delivery reports and complaints (dsn.c): one message, as an MTA hands
 * it to a pipe, in; a plain verdict out.  Pure: no database, no
 * configuration, no log, no global state but GMime's own.  GMime splits
 * the MIME structure; the fields of a message/delivery-status or
 * message/feedback-report part (RFC 822-style fields in a body) are read
 * by a small bounded reader in dsn.c.  Linked into referral-invitesctl
 * and the tests only, never into the daemon.
 *
 * Verdicts:
 *   DSN_FAILED     RFC 3464: the top-level part is multipart/report;
 *                  report-type=delivery-status, and a recipient's fields
 *                  say Action: failed with a Status of 5.x.x.
 *   DSN_DELAYED    the same report, no such recipient, but one whose
 *                  Status is 4.x.x with Action delayed or failed.  A
 *                  delayed Action with another class is malformed.
 *   DSN_COMPLAINT  RFC 5965 ARF: multipart/report;
 *                  report-type=feedback-report with Feedback-Type abuse
 *                  or fraud (a person, or a provider for them, calling
 *                  the mail unwanted or deceitful).  virus, auth-failure,
 *                  not-spam and other types are machine verdicts about
 *                  content, not a recipient's wish: IGNORED.
 *   DSN_IGNORED    anything else, with a reason (DSN_R_*): an autoreply
 *                  (Auto-Submitted other than "no", or X-Autoreply), any
 *                  message that is not a multipart/report (spam to the
 *                  bounce address, a plain message, and Exim's classic
 *                  text-only bounce, "not a delivery report" by its
 *                  X-Failed-Recipients though it is auto-replied too:
 *                  parsing prose could turn a false "failed" into a
 *                  suppressed real address), a report
 *                  with a status part missing or malformed, no
 *                  recipient, only delivered/relayed/expanded
 *                  recipients, a message over DSN_MAX_SIZE (not parsed)
 *                  or MIME nested deeper than DSN_MAX_DEPTH.
 *
 * A report about several recipients: the first recipient group (in the
 * report's order, among the first DSN_MAX_RCPTS; later ones are not
 * read) that failed wins; if none failed, the first delayed one.  An
 * invite has one recipient, so a report names at most one of ours.
 */
#ifndef DSN_H
#define DSN_H

#include <stddef.h>

#include "extern.h"
#include "token.h"

#define DSN_MAX_SIZE	(10 * 1024 * 1024)	/* larger: "too large" */
#define DSN_MAX_DEPTH	8	/* MIME levels below the message */
#define DSN_MAX_RCPTS	100	/* recipient groups read in a report */
#define DSN_DIAG_MAX	300	/* bytes of a cleaned diagnostic */
#define DSN_STATUS_MAX	11	/* "5.123.123" and room */

enum dsn_verdict {
	DSN_IGNORED,
	DSN_FAILED,
	DSN_DELAYED,
	DSN_COMPLAINT,
	DSN__MAX
};

/* The reasons of DSN_IGNORED: static strings, compare with strcmp. */
#define DSN_R_LARGE	"too large"
#define DSN_R_DEEP	"too deep"
#define DSN_R_MIME	"not a MIME message"
#define DSN_R_AUTO	"autoreply"
#define DSN_R_NOTDSN	"not a delivery report"
#define DSN_R_TYPE	"unknown report type"
#define DSN_R_NOPART	"no status part"
#define DSN_R_MALFORMED	"malformed report"
#define DSN_R_NORCPT	"no recipient"
#define DSN_R_NOFAIL	"not a failure"
#define DSN_R_NOABUSE	"not a complaint"

struct dsn {
	enum dsn_verdict verdict;
	const char	*reason;	/* DSN_R_*: set iff DSN_IGNORED */
	/*
	 * The address the report is about, as valid_email gives it:
	 * Original-Recipient when it is an rfc822 address, else
	 * Final-Recipient; for a complaint Original-Rcpt-To, else the
	 * first mailbox in the enclosed message's To.  Never empty for
	 * FAILED and DELAYED; may be empty for a COMPLAINT that has a tag
	 * (feedback loops often redact the recipient, not the envelope).
	 */
	char		 rcpt[EMAIL_MAX + 1];
	/* The Status, "5.1.1", of that recipient; "" for a complaint. */
	char		 status[DSN_STATUS_MAX + 1];
	/*
	 * Its Diagnostic-Code without the diagnostic type ("smtp;"), on
	 * one line: control characters and runs of white space become one
	 * space, invalid UTF-8 bytes '?', at most DSN_DIAG_MAX bytes cut
	 * on a character boundary; "" when there is none.  For a
	 * complaint, its Feedback-Type in lower case ("abuse", "fraud").
	 */
	char		 diag[DSN_DIAG_MAX + 1];
	/*
	 * The VERP tag (dsn_tag_of) found in the report, lower case, or
	 * "": the Return-Path of the enclosed message (message/rfc822) or
	 * headers (text/rfc822-headers), else Postfix's X-Postfix-Sender;
	 * for a complaint Original-Mail-From, else the enclosed message's
	 * Return-Path.  Untrusted like everything else here: the caller
	 * checks it with token_bounce_check.
	 */
	char		 tag[BOUNCE_TAG_LEN + 1];
};

/*
 * Read the message msg of len bytes (any bytes, NUL included; not
 * NUL-terminated) and fill *out; bounce_local is the local part of
 * bounce_address (NULL: no tag is looked for).  Returns the verdict,
 * also in out->verdict.  Never fails: what cannot be read is IGNORED
 * with a reason, and then rcpt, status, diag and tag are all "".  out
 * borrows nothing from msg.  Calls g_mime_init the first time; not
 * thread-safe.
 */
enum dsn_verdict dsn_parse(const char *msg, size_t len,
		    const char *bounce_local, struct dsn *out);
/*
 * The address a message was delivered to, as the MTA wrote it on top:
 * its first Delivered-To, else X-Original-To (a maildir has no other
 * record of the envelope), into out; 0, or -1 when there is none that
 * is an address.  Same limits as dsn_parse.
 */
int		 dsn_delivered_to(const char *msg, size_t len,
		    char out[EMAIL_MAX + 1]);
/*
 * The tag of addr when it is bounce_local+TAG@domain: the local part
 * before '+' equal to bounce_local (ASCII case folded), TAG exactly
 * BOUNCE_TAG_LEN hex digits (any case), a domain after the last '@'.
 * 0 and tag in lower case, or -1 and tag "".
 */
int		 dsn_tag_of(const char *addr, const char *bounce_local,
		    char tag[BOUNCE_TAG_LEN + 1]);
/* The verdict's name: "failed", "delayed", "complaint", "ignored". */
const char	*dsn_verdict_name(enum dsn_verdict);

#endif
