// Modules against PyTorch: parameter names and order, state_dict layout,
// forward in eval and train mode, LSTM, and the tree operations.
import { describe, it, expect } from 'vitest';
import { torch, nn, type Tensor } from 'finetorch';
import { fixture, decode, expectClose, type Encoded } from '../helpers';

type State = Record<string, Encoded>;
const fx = fixture<{
  cnn: { names: string[]; stateKeys: string[]; state: State; input: Encoded; evalOutput: Encoded; trainFeatures: Encoded; stateAfterTrainForward: State };
  text: { state: State; lstmState: State; lstmNames: string[]; ids: Encoded; embedded: Encoded; output: Encoded; h: Encoded; c: Encoded };
}>('modules.json');

function toState(s: State): Record<string, Tensor> {
  return Object.fromEntries(Object.entries(s).map(([k, v]) => [k, decode(v)]));
}

// The network scripts/make-fixtures.py builds with torch.nn.
function cnn(): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(3, 8, 3, { stride: 1, padding: 1 }),
    new nn.BatchNorm2d(8),
    new nn.ReLU(),
    new nn.MaxPool2d(2),
    new nn.Conv2d(8, 4, [3, 1], { stride: [2, 1], padding: [1, 0], bias: false }),
    new nn.BatchNorm2d(4),
    new nn.GELU(),
    new nn.AdaptiveAvgPool2d(1),
    new nn.Flatten(),
    new nn.Dropout(0.3),
    new nn.Linear(4, 5),
    new nn.Tanh(),
    new nn.Linear(5, 2),
    new nn.Sigmoid(),
  );
}

describe('nn building blocks match PyTorch', () => {
  it("parameter names, order and state_dict keys are PyTorch's", () => {
    const m = cnn();
    expect(m.namedParameters().map(([n]) => n)).toEqual(fx.cnn.names);
    expect(Object.keys(m.stateDict())).toEqual(fx.cnn.stateKeys);
  });

  it('eval-mode forward equals PyTorch after loading its state dict', () => {
    const m = cnn();
    const r = m.loadStateDict(toState(fx.cnn.state));
    expect(r).toEqual({ missingKeys: [], unexpectedKeys: [], mismatchedKeys: [] });
    m.eval();
    expectClose(m.forward(decode(fx.cnn.input)), fx.cnn.evalOutput, 1e-5);
  });

  it('train-mode forward uses batch statistics and updates running stats like PyTorch', () => {
    const m = cnn();
    m.loadStateDict(toState(fx.cnn.state));
    m.train();
    const features = new nn.Sequential(...m.children().slice(0, 9));
    expectClose(features.forward(decode(fx.cnn.input)), fx.cnn.trainFeatures, 1e-5);
    const after = m.stateDict();
    for (const [k, v] of Object.entries(fx.cnn.stateAfterTrainForward)) expectClose(after[k], v, 1e-5);
  });

  it('Embedding (paddingIdx), LayerNorm and a 2-layer bidirectional LSTM', () => {
    const text = new nn.Sequential({ embed: new nn.Embedding(10, 6, { paddingIdx: 0 }), norm: new nn.LayerNorm(6) });
    text.loadStateDict(toState(fx.text.state));
    const lstm = new nn.LSTM(6, 5, { numLayers: 2, batchFirst: true, bidirectional: true });
    expect(lstm.namedParameters().map(([n]) => n)).toEqual(fx.text.lstmNames);
    lstm.loadStateDict(toState(fx.text.lstmState));
    const emb = text.forward(decode(fx.text.ids));
    expectClose(emb, fx.text.embedded, 1e-5);
    const [out, h, c] = lstm.forwardWithState(emb);
    expectClose(out, fx.text.output, 1e-5);
    expectClose(h, fx.text.h, 1e-5);
    expectClose(c, fx.text.c, 1e-5);
    expectClose(lstm.forward(emb), fx.text.output, 1e-5);
  });
});

describe('module tree', () => {
  class Net extends nn.Module {
    backbone = this.registerModule('backbone', new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU()));
    fc = this.registerModule('fc', new nn.Linear(8, 3));
    forward(x: Tensor): Tensor {
      return this.fc.forward(this.backbone.forward(x));
    }
  }

  it('namedChildren, namedModules and getSubmodule', () => {
    const net = new Net();
    expect(net.namedChildren().map(([n]) => n)).toEqual(['backbone', 'fc']);
    expect(net.namedModules().map(([n]) => n)).toEqual(['', 'backbone', 'backbone.0', 'backbone.1', 'fc']);
    expect(net.getSubmodule('backbone.0')).toBeInstanceOf(nn.Linear);
    expect(net.namedChildren()[1][1]).toBe(net.fc);
    expect(() => net.getSubmodule('backbone.7')).toThrow(/no child '7'/);
  });

  it('replaceChild swaps the head in place, keeping order and the TS property', () => {
    const net = new Net();
    const head = new nn.Linear(8, 2);
    net.replaceChild('fc', head);
    expect(net.fc).toBe(head);
    expect(net.forward(torch.randn([5, 4])).shape).toEqual([5, 2]);
    expect(net.namedParameters().map(([n, p]) => `${n}:${p.shape}`)).toEqual(['backbone.0.weight:8,4', 'backbone.0.bias:8', 'fc.weight:2,8', 'fc.bias:2']);
    net.replaceChild('backbone.0', new nn.Linear(4, 8, { bias: false }));
    expect(Object.keys(net.stateDict())).toEqual(['backbone.0.weight', 'fc.weight', 'fc.bias']);
  });

  it('a replaced child of a native Sequential is used by its native forward', () => {
    const seq = new nn.Sequential(new nn.Linear(3, 3), new nn.Linear(3, 4));
    seq.replaceChild('1', new nn.Linear(3, 7));
    expect(seq.forward(torch.randn([2, 3])).shape).toEqual([2, 7]);
  });

  it('train() and eval() recurse', () => {
    const net = new Net();
    net.eval();
    expect(net.modules().every((m) => !m.training)).toBe(true);
    net.train();
    expect(net.modules().every((m) => m.training)).toBe(true);
  });

  it('loadStateDict: strict lists every problem; non-strict reports and skips', () => {
    const net = new Net();
    const sd = new Net().stateDict();
    delete sd['fc.bias'];
    sd['extra.weight'] = torch.zeros([1]);
    sd['fc.weight'] = torch.zeros([5, 8]);
    const before = net.stateDict()['backbone.0.weight'].clone();
    expect(() => net.loadStateDict(sd)).toThrow(/missing keys: fc\.bias[\s\S]*unexpected keys: extra\.weight[\s\S]*size mismatch for fc\.weight/);
    expect(net.stateDict()['backbone.0.weight'].toArray()).toEqual(before.toArray());
    const r = net.loadStateDict(sd, { strict: false });
    expect(r.missingKeys).toEqual(['fc.bias']);
    expect(r.unexpectedKeys).toEqual(['extra.weight']);
    expect(r.mismatchedKeys).toEqual([{ key: 'fc.weight', expected: [3, 8], got: [5, 8] }]);
    expect(net.stateDict()['backbone.0.weight'].toArray()).toEqual(sd['backbone.0.weight'].toArray());
  });

  it('registerParameter and registerBuffer appear in stateDict in PyTorch order', () => {
    class Scale extends nn.Module {
      constructor() {
        super();
        this.registerParameter('alpha', torch.ones([2]));
        this.registerBuffer('count', torch.zeros([1]));
        this.registerModule('inner', new nn.Linear(2, 2));
      }
    }
    const m = new Scale();
    expect(Object.keys(m.stateDict())).toEqual(['alpha', 'count', 'inner.weight', 'inner.bias']);
    expect(m.namedParameters().map(([n]) => n)).toEqual(['alpha', 'inner.weight', 'inner.bias']);
    expect(m.namedBuffers().map(([n]) => n)).toEqual(['count']);
    expect(() => m.forward(torch.ones([2]))).toThrow(/forward\(\) is not implemented/);
  });

  it('requiresGrad_(false) freezes a submodule', () => {
    const net = new Net();
    net.backbone.requiresGrad_(false);
    expect(
      net
        .namedParameters()
        .filter(([, p]) => p.requiresGrad)
        .map(([n]) => n),
    ).toEqual(['fc.weight', 'fc.bias']);
  });

  it('to(dtype) converts parameters in place', () => {
    const lin = new nn.Linear(2, 2);
    lin.to('float64');
    expect(lin.parameters().map((p) => p.dtype)).toEqual(['float64', 'float64']);
    expect(lin.forward(torch.ones([1, 2], { dtype: 'float64' })).dtype).toBe('float64');
  });

  it('ModuleList and ModuleDict hold children for a TypeScript forward', () => {
    const list = new nn.ModuleList([new nn.Linear(2, 2), new nn.Linear(2, 2)]);
    const dict = new nn.ModuleDict({ a: new nn.ReLU(), b: new nn.Linear(2, 1) });
    expect(list.length).toBe(2);
    expect([...list].length).toBe(2);
    expect(dict.keys()).toEqual(['a', 'b']);
    expect(Object.keys(dict.stateDict())).toEqual(['b.weight', 'b.bias']);
  });

  it('prints like PyTorch', () => {
    expect(new Net().toString()).toBe('Net(\n  (backbone): Sequential(\n    (0): Linear()\n    (1): ReLU()\n  )\n  (fc): Linear()\n)');
  });
});
