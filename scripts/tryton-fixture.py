#!/usr/bin/python3
"""Seed a fresh Tryton 6.0 database with what the billing bridge needs to create
draft customer invoices, over JSON-RPC (Python standard library only).

Usage:  /usr/bin/python3 scripts/tryton-fixture.py [URL] [LOGIN] [PASSWORD]
        URL defaults to $TRYTON_URL or http://127.0.0.1:8000/ci/ (the trailing
        path is the database name); LOGIN/PASSWORD default to admin/admin
        ($TRYTON_ADMIN_PASSWORD).

Creates currencies EUR, PLN, SEK, DKK; the company "contract-bridge demo IT" (EUR)
and makes it the admin user's company; account types Receivable and Revenue;
accounts "1510 Accounts Receivable" and "3010 IT Services Revenue" (also set as the
default receivable account); one party with one address per customer key.
It needs a database with no business data (run it once per fresh database).

Prints a TOML fragment with the record ids to stdout; progress goes to stderr.
TRACE=1 prints every request and response to stderr.

A draft invoice needs no fiscal year, period, sequence, payment term or currency
rate; posting one would (see shared/research/accounting.md, section 5). Each line must
carry "currency" = the invoice's currency (a line defaults to the company's EUR, and a
PLN/SEK/DKK invoice then fails with "The value for field "Lines" ... is not valid
according to its domain"), and every call needs the context {"company": <company>}
(else "... fail on ... these rules: User in companies")."""
import base64
import json
import os
import sys
import urllib.error
import urllib.request

ARGS = sys.argv[1:]
URL = (ARGS[0] if len(ARGS) > 0 else os.environ.get('TRYTON_URL', 'http://127.0.0.1:8000/ci/'))
LOGIN = ARGS[1] if len(ARGS) > 1 else 'admin'
PASSWORD = ARGS[2] if len(ARGS) > 2 else os.environ.get('TRYTON_ADMIN_PASSWORD', 'admin')
if not URL.endswith('/'):
    URL += '/'
TRACE = os.environ.get('TRACE')

CURRENCIES = [
    ('EUR', 'Euro', '€'),
    ('PLN', 'Polish Zloty', 'zł'),
    ('SEK', 'Swedish Krona', 'kr'),
    ('DKK', 'Danish Krone', 'kr.'),
]
COMPANY_NAME = 'contract-bridge demo IT'
# customer key -> city of its one address (party name = key)
CUSTOMERS = [
    ('poznan-clinic', 'Poznań'),
    ('nordhavn-arkitekter', 'København'),
    ('valby-tandlaege', 'Valby'),
    ('daugava-logistics', 'Rīga'),
    ('jurmala-hotel', 'Jūrmala'),
    ('riga-bakery', 'Rīga'),
    ('baltic-retail', 'Rīga'),
    ('vidzeme-foods', 'Cēsis'),
    ('access-co', 'Stockholm'),
    ('alert-co', 'Stockholm'),
    ('attend-co', 'Göteborg'),
    ('walkin-co', 'Malmö'),
]

_id = 0
_auth = None


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def rpc(method, *params):
    global _id
    _id += 1
    body = json.dumps({'id': _id, 'method': method, 'params': list(params)}).encode()
    req = urllib.request.Request(URL, data=body, headers={'Content-Type': 'application/json'})
    if _auth:
        req.add_header('Authorization', 'Session ' + _auth)
    if TRACE:
        log('>>>', body.decode())
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            res = json.load(r)
    except urllib.error.HTTPError as e:
        raise SystemExit(f'{method}: HTTP {e.code}: {e.read()[:500]!r}')
    if TRACE:
        log('<<<', json.dumps(res)[:800])
    if res.get('error'):
        raise SystemExit(f'{method} failed: {res["error"]}')
    return res['result']


def decimal(s):
    return {'__class__': 'Decimal', 'decimal': s}


def main():
    global _auth
    uid, session = rpc('common.db.login', LOGIN, {'password': PASSWORD}, 'en')
    _auth = base64.b64encode(f'{LOGIN}:{uid}:{session}'.encode()).decode()
    ctx = rpc('model.res.user.get_preferences', True, {})

    def create(model, vals):
        return rpc(f'model.{model}.create', vals, ctx)

    def search(model, domain, limit=None):
        return rpc(f'model.{model}.search', domain, 0, limit, None, ctx)

    if search('company.company', [], 1):
        raise SystemExit('database already has a company: run this on a fresh database')

    # currencies (a fresh database has none)
    cur_ids = create('currency.currency', [
        {'code': code, 'name': name, 'symbol': symbol, 'digits': 2, 'rounding': decimal('0.01')}
        for code, name, symbol in CURRENCIES])
    currencies = dict(zip([c[0] for c in CURRENCIES], cur_ids))
    log('currencies', currencies)

    # company, and make it the admin user's current company
    cparty = create('party.party', [{'name': COMPANY_NAME}])[0]
    company = create('company.company', [{'party': cparty, 'currency': currencies['EUR']}])[0]
    rpc('model.res.user.write', [uid], {'companies': [['add', [company]]], 'company': company}, ctx)
    ctx = rpc('model.res.user.get_preferences', True, {})
    if ctx.get('company') != company:
        raise SystemExit(f'user context has no company after write: {ctx}')
    log('company', company)

    # account types and the two accounts the invoices use
    t_recv, t_rev = create('account.account.type', [
        {'name': 'Receivable', 'statement': 'balance', 'receivable': True, 'company': company},
        {'name': 'Revenue', 'statement': 'income', 'revenue': True, 'company': company},
    ])
    receivable, revenue = create('account.account', [
        {'code': '1510', 'name': 'Accounts Receivable', 'type': t_recv,
         'reconcile': True, 'party_required': True, 'company': company},
        {'code': '3010', 'name': 'IT Services Revenue', 'type': t_rev, 'company': company},
    ])
    # default receivable account (used when a party has none, e.g. by on_change in
    # the Tryton client); not needed when the invoice names its account.
    rpc('model.account.configuration.write', [1], {'default_account_receivable': receivable}, ctx)
    log('accounts', {'receivable': receivable, 'revenue': revenue})

    # revenue journal (shipped by the account module's data)
    journals = search('account.journal', [('type', '=', 'revenue')], 1)
    if not journals:
        raise SystemExit('no revenue journal found')
    journal = journals[0]

    # customers: one party with one address each
    party_ids = create('party.party', [
        {'name': key, 'addresses': [['create', [{'street': 'Street 1', 'city': city}]]]}
        for key, city in CUSTOMERS])
    parties = dict(zip([c[0] for c in CUSTOMERS], party_ids))
    addrs = rpc('model.party.address.search_read', [('party', 'in', party_ids)],
                0, None, None, ['party'], ctx)
    by_party = {}
    for a in addrs:
        by_party.setdefault(a['party'], []).append(a['id'])
    addresses = {}
    for key, pid in parties.items():
        ids = by_party.get(pid, [])
        if len(ids) != 1:
            raise SystemExit(f'party {key} ({pid}) has addresses {ids}, expected one')
        addresses[key] = ids[0]
    log('parties', len(parties))

    out = [f'company = {company}', f'journal = {journal}',
           f'receivable_account = {receivable}', f'revenue_account = {revenue}',
           '[currencies]']
    out += [f'{code} = {cid}' for code, cid in currencies.items()]
    out.append('[parties]')
    out += [f'"{key}" = {pid}' for key, pid in parties.items()]
    out.append('[addresses]')
    out += [f'"{key}" = {aid}' for key, aid in addresses.items()]
    print('\n'.join(out))


if __name__ == '__main__':
    main()
