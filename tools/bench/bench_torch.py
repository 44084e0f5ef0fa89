"""The PyTorch side of `make bench`: the same networks, built from the same darknet .cfg files.

A worker: reads one JSON request per line on stdin, answers with the lines bench_dnn prints
(`BENCH <id> <wall_s> <cpu_s> <work> <unit> [label]`) and then `DONE`. Requests:
  {"cmd": "train"|"infer", "cfg": PATH, "batch": N, "iters": N, "warmup": N}
  {"cmd": "gemm", "shapes": [[ta, tb, m, n, k], ...], "seconds": S}

One thread (torch.set_num_threads(1)); CPU time is this thread's (time.thread_time), which is
where PyTorch runs every kernel when it has one intra-op thread.

The model mirrors darknet's layers and training step:
- convolutional: Conv2d (no bias under batch_normalize, as darknet), BatchNorm2d (darknet's
  rolling averages move by 0.01), then the activation (leaky = LeakyReLU(0.1));
- maxpool: MaxPool2d with ceil_mode, checked against darknet's output size; avgpool: global;
- connected: Linear (+ BatchNorm1d); dropout: Dropout(p) (darknet scales by 1/(1-p) too);
- softmax, and [cost] type=sse after it: darknet's softmax backward passes its delta
  (truth - p) straight to its input and a cost layer after it adds its own (truth - p), so
  the gradient at the logits is k (p - truth) with k the number of those layers, unscaled by
  the batch: k * cross_entropy(reduction="sum") has exactly that gradient;
- update: darknet's  upd = m upd - grad - decay*batch*w;  w += lr/batch * upd  is SGD with
  lr/batch, momentum m, dampening 0 and weight_decay decay*batch on weights only (darknet
  decays no biases and no BN scales). The rate stays the cfg's learning_rate (the poly
  policy changes nothing in the time of a step).
"""
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_cfg(path):
    """Darknet .cfg as a list of (section, {key: value}); '#' and ';' start comments."""
    sections = []
    with open(path) as f:
        for raw in f:
            line = raw.split("#")[0].split(";")[0].strip()
            if not line:
                continue
            if line.startswith("["):
                sections.append((line.strip("[]"), {}))
            else:
                key, value = line.split("=", 1)
                sections[-1][1][key.strip()] = value.strip()
    return sections


ACTIVATIONS = {
    "linear": nn.Identity,
    "relu": nn.ReLU,
    "leaky": lambda: nn.LeakyReLU(0.1),
    "logistic": nn.Sigmoid,
    "tanh": nn.Tanh,
}


class DarknetModel(nn.Module):
    """The layers of a darknet cfg; forward returns the softmax's input (the logits)."""

    def __init__(self, path):
        super().__init__()
        sections = read_cfg(path)
        net = sections[0][1]
        self.net = net
        c, h, w = int(net["channels"]), int(net["height"]), int(net["width"])
        self.shape = (c, h, w)
        self.loss_layers = 0
        layers = []
        for kind, o in sections[1:]:
            if kind in ("convolutional", "conv"):
                size, stride = int(o.get("size", 1)), int(o.get("stride", 1))
                pad = size // 2 if int(o.get("pad", 0)) else int(o.get("padding", 0))
                bn = int(o.get("batch_normalize", 0)) == 1
                filters = int(o["filters"])
                layers.append(nn.Conv2d(c, filters, size, stride, pad, bias=not bn))
                if bn:
                    layers.append(nn.BatchNorm2d(filters, eps=1e-6, momentum=0.01))
                layers.append(ACTIVATIONS[o.get("activation", "logistic")]())
                c, h, w = filters, (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
            elif kind in ("maxpool", "max"):
                size = int(o.get("size", o.get("stride", 1)))
                stride = int(o.get("stride", 1))
                pad = int(o.get("padding", size - 1))
                layers.append(nn.MaxPool2d(size, stride, ceil_mode=True))
                dh, dw = (h + pad - size) // stride + 1, (w + pad - size) // stride + 1
                th = -(-(h - size) // stride) + 1  # ceil_mode's size
                tw = -(-(w - size) // stride) + 1
                if (dh, dw) != (th, tw):
                    raise ValueError(f"{path}: maxpool {h}x{w}: darknet {dh}x{dw}, torch {th}x{tw}")
                h, w = dh, dw
            elif kind in ("avgpool", "avg"):
                layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
                h = w = 1
            elif kind in ("connected", "conn"):
                out = int(o["output"])
                bn = int(o.get("batch_normalize", 0)) == 1
                layers += [nn.Flatten(), nn.Linear(c * h * w, out, bias=not bn)]
                if bn:
                    layers.append(nn.BatchNorm1d(out, eps=1e-6, momentum=0.01))
                layers.append(ACTIVATIONS[o.get("activation", "logistic")]())
                c, h, w = out, 1, 1
            elif kind == "dropout":
                layers.append(nn.Dropout(float(o.get("probability", 0.5))))
            elif kind == "softmax":
                self.loss_layers += 1
            elif kind == "cost":
                if o.get("type", "sse") != "sse":
                    raise ValueError(f"{path}: only [cost] type=sse is mirrored")
                self.loss_layers += 1
            else:
                raise ValueError(f"{path}: no PyTorch mirror for [{kind}]")
        self.classes = c * h * w
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x).flatten(1)

    def optimizer(self, batch):
        """darknet's momentum SGD (see the module's comment)."""
        lr = float(self.net.get("learning_rate", 0.001))
        momentum = float(self.net.get("momentum", 0.9))
        decay = float(self.net.get("decay", 0.0001))
        decayed = [m.weight for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
        ids = {id(p) for p in decayed}
        others = [p for p in self.parameters() if id(p) not in ids]
        return torch.optim.SGD(
            [{"params": decayed, "weight_decay": decay * batch}, {"params": others, "weight_decay": 0.0}],
            lr=lr / batch,
            momentum=momentum,
        )


def synthetic(model, batch):
    g = torch.Generator().manual_seed(1)
    x = torch.rand((batch,) + model.shape, generator=g)
    y = torch.randint(0, model.classes, (batch,), generator=g)
    return x, y


def emit(ident, wall, cpu, n, work, unit, label):
    print(f"BENCH {ident} {wall / n:.9g} {cpu / n:.9g} {work:.9g} {unit} {label}", flush=True)


def run(req):
    torch.manual_seed(1)
    model = DarknetModel(req["cfg"])
    batch, train = req["batch"], req["cmd"] == "train"
    x, y = synthetic(model, batch)
    if train:
        model.train()
        opt = model.optimizer(batch)

        def step():
            opt.zero_grad(set_to_none=True)
            loss = model.loss_layers * F.cross_entropy(model(x), y, reduction="sum")
            loss.backward()
            opt.step()

    else:
        model.eval()

        def step():
            with torch.inference_mode():
                F.softmax(model(x), dim=1)

    for _ in range(req["warmup"]):
        step()
    w0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(req["iters"]):
        step()
    emit(req["cmd"], time.perf_counter() - w0, time.thread_time() - c0, req["iters"], batch, "images", req["cfg"])


# Samples per shape (at least) and CPU seconds per sample, as bench_dnn's time_gemm.
GEMM_MIN_SAMPLES = 5
GEMM_SAMPLE_SECONDS = 0.01


def gemm(req):
    """torch.mm on the operands laid out as dnn_gemm gets them (row-major, op() by .t()), timed
    as bench_dnn times dnn_gemm: a warm-up call, a timed call that sizes the samples, then
    samples of about GEMM_SAMPLE_SECONDS of CPU time until `seconds` of wall time have passed
    and at least GEMM_MIN_SAMPLES were taken; the sample with the least CPU time is reported."""
    for ta, tb, m, n, k in req["shapes"]:
        a = torch.rand((k, m) if ta else (m, k))
        b = torch.rand((n, k) if tb else (k, n))
        a, b = (a.t() if ta else a), (b.t() if tb else b)
        c = torch.empty((m, n))
        torch.mm(a, b, out=c)
        start, c0 = time.perf_counter(), time.thread_time()
        torch.mm(a, b, out=c)
        one = max(time.thread_time() - c0, 1e-7)
        calls = int(GEMM_SAMPLE_SECONDS / one) if one * 2 < GEMM_SAMPLE_SECONDS else 1
        best, samples = None, 0
        while samples < GEMM_MIN_SAMPLES or time.perf_counter() - start < req["seconds"]:
            w0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(calls):
                torch.mm(a, b, out=c)
            got = (time.perf_counter() - w0, time.thread_time() - c0)
            if best is None or got[1] < best[1]:
                best = got
            samples += 1
        name = ("T" if ta else "N") + ("T" if tb else "N")
        emit(f"gemm/{name}/{m}x{n}x{k}", best[0], best[1], calls, 2.0 * m * n * k, "flop",
             "torch.mm")


def main():
    torch.set_num_threads(1)
    print(f"READY torch {torch.__version__}", flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        try:
            gemm(req) if req["cmd"] == "gemm" else run(req)
        except Exception as e:  # reported to the orchestrator, which shows it
            print(f"FAIL {type(e).__name__}: {e}", flush=True)
        print("DONE", flush=True)


if __name__ == "__main__":
    main()
