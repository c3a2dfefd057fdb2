#!/usr/bin/env bash
# A real Request Tracker 5 (Debian 12 packages: 5.0.3, SQLite, standalone Starlet server) on loopback
# for the RT connector's integration tests and CI.
#
#   scripts/rt-up.sh          install if missing, fresh database, queue "Support" (SLA on) with a
#                             multi-value ticket custom field "Tags", an auth token for root in
#                             $RT_WORK/token, (re)start rt-server; prints the REST2 base URL
#   scripts/rt-up.sh stop     stop the rt-server this script started (by its pid file)
#
# Environment: RT_WORK (default <repo>/target/rt), RT_PORT (8090),
#              RT_FAKETIME (optional, e.g. '@2026-11-20 14:30:00': run the server under libfaketime,
#              clock starting at that UTC time and ticking; installs the Debian package libfaketime),
#              RT_FAKETIME_FILE (optional: the server's clock is the time written in that file, e.g.
#              '2026-10-23 13:30:00' (stopped), read again on every call).
# Auth: "Authorization: token $(cat $RT_WORK/token)", or basic auth root:password.
# SLA (RT core, %ServiceAgreements): every ticket in Support gets level "2bh": response due 2 business
# hours (Mon-Fri 09:00-17:00 Europe/Riga) after the last customer message. AssumeOutsideActor: anyone
# but the Owner and AdminCcs is a customer, root included, so a ticket root creates starts the clock;
# a reply by the Owner (set Owner=root first) meets it and clears Due (back to 1970-01-01T00:00:00Z).
# RT stores the deadline in the ticket's Due field (UTC). The server's $Timezone is UTC, so TicketSQL
# date literals ('2026-11-23 20:00:00') are UTC too.
# Every call starts from a fresh database. Installing needs root (apt-get, /etc/request-tracker5).
# Logs: $RT_WORK/{install,setup-database,setup,rt-server}.log
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
NAME=rt-up
PROCESS=rt-server
# shellcheck source=scripts/server-up.sh
source "$ROOT/scripts/server-up.sh"
W=$(work_dir "${RT_WORK:-$ROOT/target/rt}")
PORT=${RT_PORT:-8090}
PIDFILE=$W/rt-server.pid
DB=$W/rt.db
BASE=http://127.0.0.1:$PORT
URL=$BASE/REST/2.0/
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
SITE_CONF=/etc/request-tracker5/RT_SiteConfig.d/99-contract-bridge.pm
PACKAGES=(request-tracker5 rt5-standalone rt5-db-sqlite)
stop_if_asked "$@"

# HTTP status of GET $1 (000 when nothing answers); extra curl args after it
status_of() {
  local u=$1
  shift
  curl -s -o /dev/null -m 3 -w '%{http_code}' "$@" "$u" 2>/dev/null || true
}

installed() { # installed PKG... -> all of them are installed
  [ "$(dpkg-query -W -f='${Status}\n' "$@" 2>/dev/null | grep -c 'ok installed')" = $# ]
}

apt_install() { # apt_install PKG...  (log in $W/install.log)
  export DEBIAN_FRONTEND=noninteractive
  local tmp_policy=
  # Keep dpkg from starting services (exim4 is pulled in as the MTA). Containers normally have this.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    tmp_policy=1
  fi
  local rc=0
  {
    apt-get update -q &&
      apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold "$@"
  } >>"$W/install.log" 2>&1 || rc=$?
  [ -z "$tmp_policy" ] || rm -f /usr/sbin/policy-rc.d
  return $rc
}

# 1. install (Debian 12: RT 5.0.3, ~260 packages, ~70 s, mostly dpkg). Debconf is answered up front
#    so nothing prompts; the database dbconfig creates is not used (we make our own per run).
if ! installed "${PACKAGES[@]}"; then
  t=$(now)
  echo "rt-up: installing ${PACKAGES[*]}" >&2
  : >"$W/install.log"
  debconf-set-selections <<'PRESEED'
request-tracker5 request-tracker5/rtname string rt.test
request-tracker5 request-tracker5/organization string rt.test
request-tracker5 request-tracker5/correspondaddress string rt@rt.test
request-tracker5 request-tracker5/commentaddress string rt-comment@rt.test
request-tracker5 request-tracker5/webbaseurl string http://127.0.0.1
request-tracker5 request-tracker5/webpath string /rt
request-tracker5 request-tracker5/initial-root-password password password
request-tracker5 request-tracker5/install-cronjobs boolean false
request-tracker5 request-tracker5/dbconfig-install boolean true
request-tracker5 request-tracker5/database-type select sqlite3
PRESEED
  apt_install "${PACKAGES[@]}" || fail "apt-get install failed" "$W/install.log"
  echo "rt-up: installed in $(since "$t") s" >&2
fi
[ -x "$RT_SERVER" ] && command -v rt-setup-database-5 >/dev/null ||
  fail "rt-server/rt-setup-database-5 not found after install"
if [ -n "${RT_FAKETIME:-}${RT_FAKETIME_FILE:-}" ] && ! installed libfaketime; then
  apt_install libfaketime || fail "apt-get install libfaketime failed" "$W/install.log"
fi

# 2. stop what an earlier run started, and make sure the port is free
stop
for _ in $(seq 1 30); do [ "$(status_of "$BASE/")" = 000 ] && break; sleep 0.2; done
[ "$(status_of "$BASE/")" = 000 ] ||
  fail "127.0.0.1:$PORT is in use by another process (not started by this script; set RT_PORT)"

# 3. site config. RT_SiteConfig.d/*.pm load in name order after Debian's debconf/dbconfig files.
#    Everything is conditional on RT_CB_DB, so RT used without this script keeps Debian's settings.
cat >"$SITE_CONF" <<'CONF'
# Written by contract-bridge scripts/rt-up.sh; active only when RT_CB_DB is set (per-run SQLite file).
if ($ENV{RT_CB_DB}) {
    my $port = $ENV{RT_CB_PORT} || 8090;
    Set($DatabaseType, 'SQLite');
    Set($DatabaseName, $ENV{RT_CB_DB});
    Set($WebPath, '');
    Set($WebDomain, '127.0.0.1');
    Set($WebPort, $port);
    Set($WebBaseURL, "http://127.0.0.1:$port");
    Set($CanonicalizeRedirectURLs, 0);
    Set($Timezone, 'UTC');                 # server/user zone: TicketSQL date literals are UTC
    Set($LogToSTDERR, 'warning');
    Set($LogToSyslog, undef);
    Set($LogToFile, undef);
    Set($MailCommand, 'testfile');         # never hand mail to the MTA
    Set($RestrictReferrer, 0);
    # SLA (RT core). A queue uses it only with SLADisabled = 0 (queue Support is created so).
    Set(%ServiceAgreements, (
        Default => '2bh',
        # everyone but the ticket's Owner and (queue or ticket) AdminCcs is a customer ("outside
        # actor"), so a ticket that root creates over REST2 for a requestor starts the response clock
        AssumeOutsideActor => 1,
        Levels  => {
            '2bh' => {
                # due 2 business hours after the last requestor ("outside actor") message
                Response      => { BusinessMinutes => 2 * 60 },
                BusinessHours => 'Default',
                Timezone      => 'Europe/Riga',
            },
        },
    ));
    Set(%ServiceBusinessHours, (
        'Default' => {
            1 => { Name => 'Monday',    Start => '09:00', End => '17:00' },
            2 => { Name => 'Tuesday',   Start => '09:00', End => '17:00' },
            3 => { Name => 'Wednesday', Start => '09:00', End => '17:00' },
            4 => { Name => 'Thursday',  Start => '09:00', End => '17:00' },
            5 => { Name => 'Friday',    Start => '09:00', End => '17:00' },
        },
    ));
}
1;
CONF
export RT_CB_DB=$DB RT_CB_PORT=$PORT

# 4. fresh SQLite database (schema, ACLs, initial data; root's password is "password")
rm -f "$DB" "$W/token"
t=$(now)
rt-setup-database-5 --action init --skip-create >"$W/setup-database.log" 2>&1 </dev/null ||
  fail "rt-setup-database-5 failed" "$W/setup-database.log"
echo "rt-up: database $DB created in $(since "$t") s" >&2

# 5. queue Support (SLA on), ticket custom field Tags (multi-value, free text) on it, token for root
t=$(now)
perl - >"$W/token.tmp" 2>"$W/setup.log" <<'PERL' || fail "setup (queue, custom field, token) failed" "$W/setup.log"
use strict;
use warnings;
use lib '/usr/share/request-tracker5/lib';
use RT -init;
my $sys = RT->SystemUser;
my $q = RT::Queue->new($sys);
my ($ok, $msg) = $q->Create(Name => 'Support', Description => 'contract-bridge CI', SLADisabled => 0);
die "queue Support: $msg\n" unless $ok;
my $cf = RT::CustomField->new($sys);
($ok, $msg) = $cf->Create(
    Name => 'Tags', Type => 'Freeform', MaxValues => 0,
    LookupType => RT::Ticket->CustomFieldLookupType,
    Description => 'tag-like markers (multi-value)',
);
die "custom field Tags: $msg\n" unless $ok;
($ok, $msg) = $cf->AddToObject($q);
die "apply Tags to Support: $msg\n" unless $ok;
my $root = RT::User->new($sys);
$root->Load('root');
die "no root user\n" unless $root->Id;
my $auth;
($ok, $msg, $auth) = RT::AuthToken->new(RT::CurrentUser->new($root))
    ->Create(Owner => $root->Id, Description => 'contract-bridge CI');
die "token: $msg\n" unless $ok && $auth;
print "$auth\n";
PERL
mv "$W/token.tmp" "$W/token"
echo "rt-up: queue Support, custom field Tags, token in $(since "$t") s" >&2

# 6. start the standalone server in the background
t=$(now)
run=()
if [ -n "${RT_FAKETIME_FILE:-}" ]; then # the clock is whatever the file says, read on every call
  lib=$(dpkg -L libfaketime | grep '/libfaketime\.so\.1$' | head -n 1)
  run=(env "LD_PRELOAD=$lib" "FAKETIME_TIMESTAMP_FILE=$RT_FAKETIME_FILE" "FAKETIME_NO_CACHE=1")
  echo "rt-up: rt-server runs under libfaketime, clock from $RT_FAKETIME_FILE (UTC)" >&2
elif [ -n "${RT_FAKETIME:-}" ]; then # preload in rt-server itself, so the pid file holds rt-server's pid
  lib=$(dpkg -L libfaketime | grep '/libfaketime\.so\.1$' | head -n 1)
  run=(env "LD_PRELOAD=$lib" "FAKETIME=$RT_FAKETIME")
  echo "rt-up: rt-server runs under libfaketime, FAKETIME='$RT_FAKETIME' (UTC)" >&2
fi
nohup "${run[@]}" "$RT_SERVER" --host 127.0.0.1 --port "$PORT" --max-workers 2 \
  >"$W/rt-server.log" 2>&1 </dev/null &
echo $! >"$PIDFILE"
up=
for _ in $(seq 1 150); do # up to ~30 s
  if [ "$(status_of "${URL}queue/Support" -H "Authorization: token $(cat "$W/token")")" = 200 ]; then
    up=1
    break
  fi
  kill -0 "$(cat "$PIDFILE")" 2>/dev/null || fail "rt-server exited" "$W/rt-server.log"
  sleep 0.2
done
[ -n "$up" ] || { stop; fail "rt-server did not answer on $URL" "$W/rt-server.log"; }
echo "rt-up: rt-server (pid $(cat "$PIDFILE")) answered in $(since "$t") s" >&2

echo "rt-up: listening on $URL (token in $W/token, or basic root:password; logs in $W)" >&2
echo "$URL"
