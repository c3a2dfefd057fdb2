"""Finance's side of the ledger tests, in the real Tryton that scripts/tryton-up.sh
started: sell a product on a customer invoice, post it, pay it, delete a draft.
Python standard library only; the JSON-RPC calls are those of the Tryton client.

Usage:  /usr/bin/python3 scripts/tryton-ledger.py COMMAND [ARGS…]
  setup                         fiscal year 2026 (sequences, periods), a bank account,
                                a payment method and the products KLIPPEKORT-10/20;
                                idempotent; prints {"products": {code: id}, …} as JSON
  party NAME                    a customer party with one address; prints "PARTY ADDRESS"
  sell PARTY CODE PRICE DATE CURRENCY_ID [QUANTITY]
                                a draft customer invoice with one line of product CODE;
                                prints its id
  post ID                       validates and posts an invoice
  pay ID                        pays an invoice in full (the account.invoice.pay wizard)
  delete ID                     deletes a draft invoice (what finance does to a draft it rejects)
  cancel ID                     cancels an invoice
  state ID                      prints the invoice's state (or "deleted")
Environment: TRYTON_URL (http://127.0.0.1:8000/ci/), TRYTON_ADMIN_PASSWORD (admin)."""
import base64
import json
import os
import sys
import urllib.request

URL = os.environ.get('TRYTON_URL', 'http://127.0.0.1:8000/ci/')
PASSWORD = os.environ.get('TRYTON_ADMIN_PASSWORD', 'admin')
AUTH = 'Basic ' + base64.b64encode(f'admin:{PASSWORD}'.encode()).decode()
YEAR = 2026


def rpc(method, *params):
    body = json.dumps({'id': 1, 'method': method, 'params': list(params)}).encode()
    req = urllib.request.Request(URL, data=body, headers={
        'Content-Type': 'application/json', 'Authorization': AUTH})
    with urllib.request.urlopen(req, timeout=30) as r:
        res = json.load(r)
    if res.get('error'):
        raise SystemExit(f'{method}: {res["error"]}')
    return res['result']


def dec(s):
    return {'__class__': 'Decimal', 'decimal': str(s)}


def day(s):
    y, m, d = (int(p) for p in s.split('-'))
    return {'__class__': 'date', 'year': y, 'month': m, 'day': d}


CTX = {'company': 1}


def search(model, domain, limit=None):
    return rpc(f'model.{model}.search', domain, 0, limit, None, CTX)


def create(model, vals):
    return rpc(f'model.{model}.create', vals, CTX)


def setup():
    company = 1
    if not search('account.fiscalyear', [['company', '=', company]], 1):
        move_type = search('ir.sequence.type', [['name', '=', 'Account Move']], 1)
        move_seq = create('ir.sequence', [{'name': f'Moves {YEAR}', 'sequence_type': move_type[0],
                                           'company': company}])[0]
        inv_type = search('ir.sequence.type', [['name', '=', 'Invoice']], 1)
        inv_seq = create('ir.sequence.strict', [{'name': f'Invoices {YEAR}',
                                                 'sequence_type': inv_type[0], 'company': company}])[0]
        fy = create('account.fiscalyear', [{
            'name': str(YEAR), 'company': company,
            'start_date': day(f'{YEAR}-01-01'), 'end_date': day(f'{YEAR}-12-31'),
            'post_move_sequence': move_seq,
            'invoice_sequences': [['create', [{
                'company': company, 'out_invoice_sequence': inv_seq,
                'out_credit_note_sequence': inv_seq, 'in_invoice_sequence': inv_seq,
                'in_credit_note_sequence': inv_seq}]]],
        }])[0]
        rpc('model.account.fiscalyear.create_period', [fy], CTX)
    # Posting an invoice in another currency than the company's needs a rate.
    for code, rate in [('EUR', '1'), ('DKK', '7.46'), ('SEK', '11.2'), ('PLN', '4.3')]:
        cur = search('currency.currency', [['code', '=', code]], 1)
        if cur and not search('currency.currency.rate', [['currency', '=', cur[0]]], 1):
            create('currency.currency.rate', [{'currency': cur[0], 'date': day(f'{YEAR}-01-01'),
                                               'rate': dec(rate)}])
    bank = search('account.account', [['code', '=', '1910']], 1)
    if not bank:
        t_bank = create('account.account.type', [{'name': 'Bank', 'statement': 'balance',
                                                  'company': company}])[0]
        bank = create('account.account', [{'code': '1910', 'name': 'Bank', 'type': t_bank,
                                           'company': company}])
    bank = bank[0]
    method = search('account.invoice.payment.method', [['name', '=', 'Bank transfer']], 1)
    if not method:
        journal = search('account.journal', [['type', '=', 'cash']], 1)
        if not journal:
            journal = create('account.journal', [{'name': 'Bank', 'code': 'BANK', 'type': 'cash'}])
        method = create('account.invoice.payment.method', [{
            'name': 'Bank transfer', 'company': company, 'journal': journal[0],
            'debit_account': bank, 'credit_account': bank}])
    revenue = search('account.account', [['code', '=', '3010']], 1)[0]
    category = search('product.category', [['name', '=', 'Prepaid support']], 1)
    if not category:
        category = create('product.category', [{
            'name': 'Prepaid support', 'accounting': True,
            'account_revenue': revenue}])
    products = {}
    uom = search('product.uom', [['symbol', '=', 'u']], 1) or search('product.uom', [], 1)
    for code, name, price in [('KLIPPEKORT-10', 'Klippekort 10', '9500'),
                              ('KLIPPEKORT-20', 'Klippekort 20', '18000')]:
        found = rpc('model.product.product.search', [['code', '=', code]], 0, 1, None, CTX)
        if not found:
            tmpl = create('product.template', [{
                'name': name, 'type': 'service', 'default_uom': uom[0],
                'list_price': dec(price), 'account_category': category[0],
                'code': code, 'products': [['create', [{}]]]}])[0]
            found = rpc('model.product.product.search', [['template', '=', tmpl]], 0, 1, None, CTX)
        products[code] = found[0]
    print(json.dumps({'products': products, 'payment_method': method[0], 'bank': bank}))


def sell(party, code, price, date, currency, quantity='1'):
    [prod] = rpc('model.product.product.search_read', [['code', '=', code]], 0, 1, None, ['default_uom'], CTX)
    product = prod['id']
    revenue = search('account.account', [['code', '=', '3010']], 1)[0]
    receivable = search('account.account', [['code', '=', '1510']], 1)[0]
    journal = search('account.journal', [['type', '=', 'revenue']], 1)[0]
    address = search('party.address', [['party', '=', int(party)]], 1)[0]
    inv = create('account.invoice', [{
        'type': 'out', 'company': 1, 'party': int(party), 'invoice_address': address,
        'currency': int(currency), 'journal': journal, 'account': receivable,
        'invoice_date': day(date), 'description': f'{code} sold',
        'lines': [['create', [{
            'type': 'line', 'product': product, 'description': code, 'unit': prod['default_uom'],
            'quantity': float(quantity), 'unit_price': dec(price), 'account': revenue,
            'currency': int(currency)}]]],
    }])[0]
    print(inv)


def post(inv):
    # Invoice numbers follow accounting dates: an invoice dated before one
    # already posted (an earlier test run) is booked on the latest date,
    # keeping its invoice date.
    rows = rpc('model.account.invoice.search_read',
               [['type', '=', 'out'], ['state', 'in', ['posted', 'paid']]], 0, None, None,
               ['invoice_date', 'accounting_date'], CTX)
    key = lambda d: (d['year'], d['month'], d['day'])
    dates = [r['accounting_date'] or r['invoice_date'] for r in rows]
    dates = [d for d in dates if d]
    [me] = rpc('model.account.invoice.read', [inv], ['invoice_date'], CTX)
    if dates and me['invoice_date'] and key(max(dates, key=key)) > key(me['invoice_date']):
        rpc('model.account.invoice.write', [inv], {'accounting_date': max(dates, key=key)}, CTX)
    rpc('model.account.invoice.validate_invoice', [inv], CTX)
    rpc('model.account.invoice.post', [inv], CTX)


def pay(inv):
    method = search('account.invoice.payment.method', [['name', '=', 'Bank transfer']], 1)[0]
    [row] = rpc('model.account.invoice.read', [inv],
                ['amount_to_pay', 'currency', 'invoice_date'], CTX)
    ctx = dict(CTX, active_id=inv, active_ids=[inv], active_model='account.invoice')
    sid, _, _ = rpc('wizard.account.invoice.pay.create', ctx)
    rpc('wizard.account.invoice.pay.execute', sid, {}, 'start', ctx)
    rpc('wizard.account.invoice.pay.execute', sid, {'start': {
        'payment_method': method, 'amount': row['amount_to_pay'],
        'currency': row['currency'], 'date': row['invoice_date'],
        'description': 'paid'}}, 'choice', ctx)
    rpc('wizard.account.invoice.pay.delete', sid, ctx)


def state(inv):
    rows = rpc('model.account.invoice.search_read', [['id', '=', inv]], 0, 1, None, ['state'], CTX)
    print(rows[0]['state'] if rows else 'deleted')


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == 'setup':
        setup()
    elif cmd == 'party':
        party = create('party.party', [{'name': args[0], 'addresses': [['create', [{'city': 'Valby'}]]]}])[0]
        print(party, search('party.address', [['party', '=', party]], 1)[0])
    elif cmd == 'sell':
        sell(*args)
    elif cmd == 'post':
        post(int(args[0]))
    elif cmd == 'pay':
        pay(int(args[0]))
    elif cmd == 'delete':
        rpc('model.account.invoice.delete', [int(args[0])], CTX)
    elif cmd == 'cancel':
        rpc('model.account.invoice.cancel', [int(args[0])], CTX)
    elif cmd == 'state':
        state(int(args[0]))
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main()
