// The wire envelope on its own: `<header JSON>\n<payload>`, validated on decode.
import { expect } from 'chai';
import { PROTOCOL_VERSION, RPCProtocolError } from '../../src/index.js';
import { MessageKind, decodeMessage, encodeAnswer, encodeMessage, encodeRequest, type Header } from '../../src/protocol/envelope.js';

describe('protocol envelope', () => {
  const headers: Header[] = [
    { v: 1, k: MessageKind.Request, id: 'p.0', m: ['math', 'add'], dl: 1_700_000_000_000 },
    { v: 1, k: MessageKind.Request, id: 'p.1', m: ['log'], dl: 1, n: 1 },
    { v: 1, k: MessageKind.Request, id: 'p.2', m: ['dl'], dl: 2, cb: [[1], [0, 'opts', 'onProgress'], [0, 'list', 3]] },
    { v: 1, k: MessageKind.Result, id: 'p.3' },
    { v: 1, k: MessageKind.Error, id: 'p.4' },
    { v: 1, k: MessageKind.Callback, id: 'p.5', c: 0 },
  ];

  for (const header of headers) {
    it(`round-trips a "${header.k}" header${'n' in header ? ' (notification)' : ''}${'cb' in header ? ' with callbacks' : ''}`, () => {
      const payload = '{"json":["a\\nb"]}\nsecond line\n';
      const decoded = decodeMessage(encodeMessage(header, payload));
      expect(decoded.header).to.deep.equal(header);
      // The payload is kept byte for byte, newlines included, and never parsed here.
      expect(decoded.payload).to.equal(payload);
    });
  }

  it('encodeAnswer and encodeRequest write the same bytes as encodeMessage, ids with quotes and unicode included', () => {
    for (const id of ['p.0', 'a"b\\c\n', 'é☃\u2028', 'x'.repeat(128)]) {
      for (const k of [MessageKind.Result, MessageKind.Error] as const) {
        expect(encodeAnswer(k, id, '{"json":1}')).to.equal(encodeMessage({ v: 1, k, id }, '{"json":1}'));
      }
      const m = ['math', 'a"dd'];
      const cb = [[1], [0, 'opts', 'on"Progress']];
      expect(encodeRequest(id, JSON.stringify(m), 5, false, undefined, '[]')).to.equal(encodeMessage({ v: 1, k: MessageKind.Request, id, m, dl: 5 }, '[]'));
      expect(encodeRequest(id, JSON.stringify(m), 5, true, undefined, '[]')).to.equal(encodeMessage({ v: 1, k: MessageKind.Request, id, m, dl: 5, n: 1 }, '[]'));
      expect(encodeRequest(id, JSON.stringify(m), 5, false, cb, '[]')).to.equal(encodeMessage({ v: 1, k: MessageKind.Request, id, m, dl: 5, cb }, '[]'));
      expect(decodeMessage(encodeAnswer(MessageKind.Result, id, 'p')).header).to.deep.equal({ v: 1, k: 'res', id });
    }
  });

  it('keeps an empty payload', () => {
    expect(decodeMessage(encodeMessage({ v: 1, k: MessageKind.Result, id: 'x' }, '')).payload).to.equal('');
  });

  it('writes version 1 unless a version 2 field is used, and uses short tags', () => {
    expect(PROTOCOL_VERSION).to.equal(2);
    expect(encodeRequest('i', '["f"]', 5, false, undefined, '[]')).to.match(/^\{"v":1,/);
    expect(encodeRequest('i', '["f"]', 5, false, undefined, '[]', '{"a":"b"}')).to.equal('{"v":2,"k":"req","id":"i","m":["f"],"dl":5,"md":{"a":"b"}}\n[]');
    expect(MessageKind).to.deep.equal({ Request: 'req', Result: 'res', Error: 'err', Callback: 'cb' });
    const data = encodeMessage({ v: 1, k: MessageKind.Result, id: 'x' }, 'p');
    expect(data).to.equal('{"v":1,"k":"res","id":"x"}\np');
  });

  it('names the entry id in the protocol error', () => {
    const err = (() => {
      try {
        decodeMessage('garbage', '1700000000000-0');
      } catch (e) {
        return e as RPCProtocolError;
      }
      return undefined;
    })();
    expect(err).to.be.instanceOf(RPCProtocolError);
    expect(err?.entryId).to.equal('1700000000000-0');
    expect(err?.message).to.include('(entry 1700000000000-0)');
    expect(err?.code).to.equal('ERR_RPC_PROTOCOL');
  });

  it('accepts 32 path segments and ids of 128 characters, and refuses one more', () => {
    const ok = { v: 1, k: MessageKind.Request, id: 'i'.repeat(128), m: Array<string>(32).fill('s'), dl: 1 } as const;
    expect(decodeMessage(encodeMessage(ok, '[]')).header).to.deep.equal(ok);
    expect(() => decodeMessage(encodeMessage({ ...ok, id: 'i'.repeat(129) }, '[]'))).to.throw(RPCProtocolError, 'bad "id"');
    expect(() => decodeMessage(encodeMessage({ ...ok, m: Array<string>(33).fill('s') }, '[]'))).to.throw(RPCProtocolError, 'bad method path');
  });

  it('refuses non-finite deadlines and callback paths that are empty or do not start with an argument index', () => {
    const base = '{"v":1,"k":"req","id":"a","m":["x"]';
    expect(() => decodeMessage(`${base},"dl":null}\n[]`)).to.throw(RPCProtocolError, 'bad deadline');
    expect(() => decodeMessage(`${base},"dl":1,"cb":[[]]}\n[]`)).to.throw(RPCProtocolError, 'bad callback paths');
    expect(() => decodeMessage(`${base},"dl":1,"cb":[["a",0]]}\n[]`)).to.throw(RPCProtocolError, 'bad callback paths');
    expect(() => decodeMessage(`${base},"dl":1,"cb":[[0,1.5]]}\n[]`)).to.throw(RPCProtocolError, 'bad callback paths');
    expect(() => decodeMessage(`${base},"dl":1,"cb":{"0":[0]}}\n[]`)).to.throw(RPCProtocolError, 'bad callback paths');
    expect(() => decodeMessage('{"v":1,"k":"cb","id":"a","c":1.5}\n[]')).to.throw(RPCProtocolError, 'bad callback index');
  });
});
