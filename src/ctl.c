/* SPDX-License-Identifier: ISC
 * Copyright (c) 2026 the referral-invites authors.  ISC licence: see COPYING. */
/*
 * referral-invitesctl: the admin tool.  Manages apps, keys, users and
 * invites in the database named by -d or by the config given with -c.
 * Secrets it creates are printed once and stored only hashed or derived.
 * Exit 0 on success, 1 on a refused operation (75, EX_TEMPFAIL, for
 * bounce: its MTA keeps the report), 2 on a usage error.
 *
 * This file: the options, the command table, usage, dispatch and main;
 * the commands themselves are in ctl_db.c, ctl_app.c and ctl_invite.c
 * (ctl.h).
 */
#include <sys/stat.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>

#include <sqlite3.h>

#include "log.h"
#include "conf.h"
#include "db.h"
#include "pg_uri.h"
#include "ctl.h"

#ifndef SYSCONFDIR
#define SYSCONFDIR "/etc"
#endif
#define CONF_DEFAULT	SYSCONFDIR "/referral-invites/referral-invites.conf"

struct db	*ctl_db;
const char	*ctl_dbpath;
const char	*ctl_node;
int		 ctl_json;
const struct conf *ctl_conf;

/* ------------------------------------------------------------ options */

/* Parse --option value pairs into o; positional arguments stay in argv. */
static int
parse_opts(int argc, char *argv[], struct opts *o, char *pos[], int maxpos)
{
	static const struct option lo[] = {
		{ "name", 1, NULL, 'n' }, { "invite-url", 1, NULL, 'u' },
		{ "sender", 1, NULL, 's' }, { "language", 1, NULL, 'l' },
		{ "type", 1, NULL, 't' }, { "email", 1, NULL, 'e' },
		{ "id", 1, NULL, 'i' }, { "alg", 1, NULL, 'a' },
		{ "public-key", 1, NULL, 'k' }, { "issuer", 1, NULL, 'I' },
		{ "status", 1, NULL, 'S' }, { "since", 1, NULL, 'T' },
		{ "app", 1, NULL, 'A' }, { "accept-ttl", 1, NULL, 2 },
		{ "limit-per-hour", 1, NULL, 3 },
		{ "limit-per-day", 1, NULL, 4 },
		{ "limit-per-minute", 1, NULL, 5 }, { "cooldown", 1, NULL, 6 },
		{ "ttl", 1, NULL, 7 }, { "redirect-allow", 1, NULL, 8 },
		{ "maildir", 1, NULL, 9 }, { "recipient", 1, NULL, 10 },
		{ "webhook-url", 1, NULL, 11 }, { "to", 1, NULL, 12 },
		{ NULL, 0, NULL, 0 }
	};
	int ch, npos = 0;

	memset(o, 0, sizeof(*o));
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "-", lo, NULL)) != -1) {
		o->nset++;
		switch (ch) {
		case 2: o->accept_ttl = optarg; break;
		case 3: o->per_hour = optarg; break;
		case 4: o->per_day = optarg; break;
		case 5: o->per_minute = optarg; break;
		case 6: o->cooldown = optarg; break;
		case 7: o->ttl = optarg; break;
		case 8: o->redirect_allow = optarg; break;
		case 9: o->maildir = optarg; break;
		case 10: o->recipient = optarg; break;
		case 11: o->webhook_url = optarg; break;
		case 12: o->to = optarg; break;
		case 'n': o->name = optarg; break;
		case 'u': o->invite_url = optarg; break;
		case 's': o->sender = optarg; break;
		case 'l': o->language = optarg; break;
		case 't': o->type = optarg; break;
		case 'e': o->email = optarg; break;
		case 'i': o->id = optarg; break;
		case 'a': o->alg = optarg; break;
		case 'k': o->public_key = optarg; break;
		case 'I': o->issuer = optarg; break;
		case 'S': o->status = optarg; break;
		case 'T': o->since = optarg; break;
		case 'A': o->app = optarg; break;
		case 1:
			o->nset--;
			if (npos >= maxpos)
				ctl_usage("too many arguments");
			pos[npos++] = optarg;
			break;
		default:
			ctl_usage("unknown option");
		}
	}
	return npos;
}

/* ------------------------------------------------------------ dispatch */

/*
 * Every command: its words, how many positional arguments it takes, its
 * handler.  Usage, dispatch and the documentation test (tests/manlint.sh)
 * read this table; adding a command is a row here and its entry in
 * referral-invitesctl(8).
 */
static const struct cmd {
	const char	*noun;
	const char	*verb;		/* NULL: the noun alone */
	int		 npos;
	int		(*fn)(const struct cmd_args *);
} commands[] = {
	{ "init", NULL, 0, cmd_init },
	{ "app", "add", 0, cmd_app_add },
	{ "app", "list", 0, cmd_app_list },
	{ "app", "show", 1, cmd_of_app },
	{ "app", "set", 1, cmd_app_set },
	{ "app", "jwt-key", 1, cmd_app_jwt_key },
	{ "app", "webhook-secret", 1, cmd_app_webhook_secret },
	{ "key", "add", 1, cmd_key_add },
	{ "key", "list", 1, cmd_of_app },
	{ "key", "revoke", 1, cmd_key_revoke },
	{ "user", "add", 1, cmd_user_add },
	{ "user", "list", 1, cmd_of_app },
	{ "user", "disable", 1, cmd_user_active },
	{ "user", "enable", 1, cmd_user_active },
	{ "token", NULL, 2, cmd_token },
	{ "invites", NULL, 0, cmd_invites },
	{ "invite", "show", 1, cmd_invite },
	{ "invite", "retry", 1, cmd_invite },
	{ "invite", "cancel", 1, cmd_invite },
	{ "suppress", "add", 2, cmd_suppress },
	{ "suppress", "remove", 2, cmd_suppress },
	{ "suppress", "list", 1, cmd_suppress },
	{ "metrics", NULL, 0, cmd_metrics },
	{ "bounce", NULL, 0, cmd_bounce },
	{ "events", NULL, 0, cmd_events },
	{ "event", "show", 1, cmd_event },
	{ "event", "retry", 1, cmd_event },
	{ "migrate", NULL, 0, cmd_migrate },
	{ NULL, NULL, 0, NULL }
};

void
ctl_usage(const char *why)
{
	const struct cmd *c;

	if (why != NULL)
		fprintf(stderr, "referral-invitesctl: %s\n", why);
	fprintf(stderr, "usage: referral-invitesctl [-c file | -d database] "
	    "[--json] command [args]\ncommands:");
	for (c = commands; c->noun != NULL; c++)
		fprintf(stderr, "%s %s%s%s", c == commands ? "" : ",", c->noun,
		    c->verb ? " " : "", c->verb ? c->verb : "");
	fprintf(stderr, "\n(see referral-invitesctl(8))\n");
	exit(2);
}

/* Whether noun takes a verb (app add), or stands alone (init). */
static int
has_verbs(const char *noun)
{
	const struct cmd *c;

	for (c = commands; c->noun != NULL; c++)
		if (strcmp(c->noun, noun) == 0)
			return c->verb != NULL;
	return 0;
}

static int
dispatch(const char *c1, const char *c2, struct opts *o, char *pos[],
    int npos)
{
	const struct cmd *c;
	struct cmd_args a = { c1, c2, pos, npos, o };

	for (c = commands; c->noun != NULL; c++) {
		if (strcmp(c->noun, c1) != 0 || (c->verb == NULL) !=
		    (c2 == NULL) || (c2 != NULL && strcmp(c->verb, c2) != 0))
			continue;
		if (npos != c->npos)
			ctl_usage("wrong number of arguments");
		return c->fn(&a);
	}
	ctl_usage("unknown command");
}

/*
 * Where the node's own files are, as a path beside them: a SQLite
 * database's own, or on PostgreSQL (issue 21) one in state_directory (its
 * default with -d), so that secret.key and the metrics file are found
 * there as beside a SQLite file.
 */
static void
set_node(const struct conf *c)
{
	static char node[4096];
	const char *dir = c != NULL && c->state_directory != NULL ?
	    c->state_directory : LOCALSTATEDIR "/lib/referral-invites";

	if (!pg_uri_is(ctl_dbpath)) {
		ctl_node = ctl_dbpath;
		return;
	}
	if ((size_t)snprintf(node, sizeof(node), "%s/postgresql", dir) >=
	    sizeof(node))
		ctl_refuse("%s: path too long", dir);
	ctl_node = node;
}

/* migrate copies from SQLite, so names PostgreSQL with --to. */
static void
check_migrate(const char *c1)
{
	char shown[512];

	if (strcmp(c1, "migrate") != 0 || !pg_uri_is(ctl_dbpath))
		return;
	pg_uri_redact(ctl_dbpath, shown, sizeof(shown));
	ctl_refuse("%s: migrate copies a SQLite database (-d PATH, or the "
	    "config's database) to --to URI", shown);
}

int
main(int argc, char *argv[])
{
	struct conf c;
	struct opts o;
	const char *conf_path = NULL, *c1, *c2 = NULL;
	char err[512], *pos[4];
	int i, npos, rest, rc;

	log_init(1, LOG_LVL_WARNING, "referral-invitesctl");
	umask(027);
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			ctl_json = 1;
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf_path = argv[++i];
		else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
			ctl_dbpath = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0)
			ctl_usage(NULL);
		else
			ctl_usage("unknown option");
	}
	if (i >= argc)
		ctl_usage(NULL);
	/*
	 * Before the config and the database are opened: a report that
	 * cannot be read now (a wrong user in the MTA's alias or pipe)
	 * stays in the MTA's queue instead of bouncing into the void.
	 */
	if (strcmp(argv[i], "bounce") == 0)
		ctl_fail_status = EX_TEMPFAIL;
	if (ctl_dbpath != NULL && conf_path != NULL)
		ctl_usage("-c and -d exclude each other");
	memset(&c, 0, sizeof(c));
	if (ctl_dbpath == NULL) {
		if (conf_load(&c, conf_path ? conf_path : CONF_DEFAULT, 0, err,
		    sizeof(err)) == -1)
			ctl_refuse("%s", err);
		ctl_dbpath = c.database;
		ctl_conf = &c;
	}
	c1 = argv[i++];
	if (has_verbs(c1)) {
		if (i >= argc)
			ctl_usage("missing subcommand");
		c2 = argv[i++];
	}
	rest = argc - i + 1;
	/* Remaining words: options and positional arguments. */
	argv[i - 1] = (char *)"referral-invitesctl";
	npos = parse_opts(rest, argv + i - 1, &o, pos, 4);
	check_migrate(c1);
	set_node(ctl_conf);
	ctl_open(ctl_dbpath, strcmp(c1, "init") != 0);
	rc = dispatch(c1, c2, &o, pos, npos);
	ctl_close();
	conf_free(&c);
	return rc;
}
