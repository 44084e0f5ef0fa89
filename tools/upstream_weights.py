#!/usr/bin/env python3
"""Write a seeded pseudo-random darknet .weights file for a classification cfg.

Usage: upstream_weights.py --tree pj|ab --seed N CFG OUT.weights

For tools/compare-upstream.sh: the file is read by upstream darknet (pjreddie's or
AlexeyAB's tree, --tree) and by darknetp, so that both predict with the same parameters.
The layer shapes are computed here from the cfg text, independently of darknetp's parser,
so that a shape darknetp gets wrong shows up as a refused or mispredicting file.

File layout (both trees' load_weights_upto): int32 major 0, minor 2, revision 0, then a
64-bit `seen`; per layer, in layer order:
  [convolutional]  biases[n], if batch_normalize: scales[n], rolling_mean[n],
                   rolling_variance[n]; then weights[n * c/groups * size * size]
  [connected]      biases[out], weights[out * in] (not transposed: minor < 1000), then,
                   if batch_normalize, scales, rolling_mean, rolling_variance [out]
  [batchnorm]      scales[c], rolling_mean[c], rolling_variance[c]
  [shortcut]       only AlexeyAB's, with weights_type: refused here (no cfg uses it)
Every other layer kind holds no parameters.

Stdout: "input W H C" and "outputs N" (the last layer's outputs, the number of classes the
names file needs). Exit status 2 for a cfg this generator cannot lay out, naming the reason.

Values: batch-norm scales uniform in [2, 4), rolling_mean in [-0.05, 0.05),
rolling_variance scale^2 * [0.9, 1.1) (see put_bn); biases and weights have a random sign and
a magnitude uniform in [2^e, 2^(e+1)), e chosen per array. Weights get e such that their
variance is about 2/fan_in (He's scale for relu-like activations), so activations keep their
size through deep networks; the last convolutional or connected layer's weights are 2^3
times larger (--last-boost), as the global average pool before most classifiers' softmax
shrinks the logits, so the top-5 neither ties near 1/classes nor saturates at 100% (not
when that layer is logistic: see layout()); the last layer of each residual branch gets 1/8
of the scale, so that shortcuts do not blow the activations up. The floats are built from
their bit patterns with bytes.translate, so that VGG's 138M parameters take seconds in pure
Python (no numpy on the target machine).
"""

import argparse
import math
import random
import re
import struct
import sys


class CfgError(Exception):
    pass


def read_cfg(path):
    """Sections as darknet's read_cfg sees them: blanks removed, '#'/';' lines skipped."""
    sections = []
    with open(path, "rb") as f:
        text = f.read().decode("utf-8", "replace")
    if text.startswith("\ufeff"):
        text = text[1:]
    for raw in text.splitlines():
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            sections.append((line, {}))
            continue
        if "=" not in line or not sections:
            raise CfgError("line not understood: %r" % raw)
        key, value = line.split("=", 1)
        # darknet's option_find keeps the first value of a key given twice.
        sections[-1][1].setdefault(key, value)
    return sections


def atoi(s):
    m = re.match(r"[+-]?\d+", s)
    return int(m.group(0)) if m else 0


def geti(opts, key, default):
    return atoi(opts[key]) if key in opts else default


class Writer:
    """Appends arrays of floats with a random sign and a magnitude in [2^e, 2^(e+1))."""

    def __init__(self, out, seed):
        self.out = out
        self.rng = random.Random(seed)

    def put_values(self, values):
        self.out.write(struct.pack("<%df" % len(values), *values))

    def put(self, count, exponent, positive=False):
        if count <= 0:
            return
        # IEEE-754 single, little-endian: byte 3 = sign | exponent >> 1,
        # byte 2 = (exponent & 1) << 7 | top 7 mantissa bits; bytes 0..1 stay random.
        biased = exponent + 127
        hi = biased >> 1
        lo = (biased & 1) << 7
        sign_mask = 0x00 if positive else 0x80
        t3 = bytes(((b & sign_mask) | hi) for b in range(256))
        t2 = bytes((lo | (b & 0x7F)) for b in range(256))
        # randbytes takes at most 2^31 bits at once: chunks of 2^20 floats.
        while count > 0:
            k = min(count, 1 << 20)
            data = bytearray(self.rng.randbytes(4 * k))
            data[3::4] = bytes(data[3::4]).translate(t3)
            data[2::4] = bytes(data[2::4]).translate(t2)
            self.out.write(data)
            count -= k


def weight_exponent(fan_in):
    # E[x^2] of a magnitude uniform in [m, 2m) is 7m^2/3; aim at 2/fan_in.
    m = math.sqrt(3.0 * 2.0 / (7.0 * max(fan_in, 1)))
    return int(math.floor(math.log2(m) + 0.5))


WEIGHTED = ("[convolutional]", "[conv]", "[connected]")


def put_bn(wr, n, gain=1.0):
    # Each channel's rolling_variance is its scale squared times [0.9, 1.1), so that
    # scale / sqrt(variance) is about 1: a random pair would shrink or grow every
    # activation by the same factor per layer, which over darknet53's 52 layers leaves
    # a flat softmax (near-ties in the top-5) or a saturated one. Variances of about 4 to 16
    # keep apart darknet's two normalisations, pjreddie's x / (sqrt(v) + 1e-6) (darknetp's)
    # and AlexeyAB's x / sqrt(v + 1e-5), by at most 1e-6 of x per layer.
    scales = [wr.rng.uniform(2.0, 4.0) for _ in range(n)]
    wr.put_values([gain * s for s in scales])
    wr.put_values([wr.rng.uniform(-0.05, 0.05) for _ in range(n)])
    wr.put_values([s * s * wr.rng.uniform(0.9, 1.1) for s in scales])


def layout(sections, tree, wr, last_boost):
    if not sections or sections[0][0] not in ("[net]", "[network]"):
        raise CfgError("the first section is not [net]")
    net = sections[0][1]
    w, h, c = geti(net, "width", 0), geti(net, "height", 0), geti(net, "channels", 0)
    if w <= 0 or h <= 0 or c <= 0:
        raise CfgError("[net] needs width, height and channels")
    print("input %d %d %d" % (w, h, c))
    shapes = []  # (w, h, c, outputs) per layer
    weighted = [i for i, (k, _) in enumerate(sections[1:]) if k in WEIGHTED]
    last_weighted = weighted[-1] if weighted else -1
    # A logistic output (writing.cfg: one per pixel, no softmax) saturates at exactly
    # 1.0f when boosted, and the order of tied 1.0f values is down to the last bit.
    if last_weighted >= 0 and sections[1 + last_weighted][1].get("activation") == "logistic":
        last_boost = 0
    # Residual branches: each [shortcut] adds its branch to its input, so with branches
    # that keep their input's size the activations double in variance per shortcut
    # (resnet34's 16: a top-1 of 100.00% and exact zeros after it, whose order is
    # arbitrary). The branch's last weighted layer gets 1/8 of the scale ("Fixup"-like):
    # darknet53's 23 shortcuts then grow the variance by (1 + 1/64)^23, about 1.4.
    branch_end = set()
    for i, (k, _) in enumerate(sections[1:]):
        if k == "[shortcut]":
            j = i - 1
            while j >= 0 and sections[1 + j][0] in ("[dropout]", "[activation]"):
                j -= 1
            if j >= 0 and sections[1 + j][0] in WEIGHTED:
                branch_end.add(j)
    for idx, (kind, o) in enumerate(sections[1:]):
        outputs = None
        if kind in ("[convolutional]", "[conv]"):
            n = geti(o, "filters", 1)
            size = geti(o, "size", 1)
            stride = geti(o, "stride", 1)
            sx = geti(o, "stride_x", stride) if tree == "ab" else stride
            sy = geti(o, "stride_y", stride) if tree == "ab" else stride
            pad = geti(o, "padding", 0)
            if geti(o, "pad", 0):
                pad = size // 2
            groups = max(geti(o, "groups", 1), 1)
            dil = geti(o, "dilation", 1) if tree == "ab" else 1
            if tree == "ab" and geti(o, "antialiasing", 0):
                raise CfgError("layer %d: antialiasing adds a hidden layer" % idx)
            if tree == "ab" and "share_index" in o:
                raise CfgError("layer %d: share_index" % idx)
            nw = (c // groups) * n * size * size
            boost = last_boost if idx == last_weighted else 0
            bn = geti(o, "batch_normalize", 0)
            if idx in branch_end and not bn:
                boost -= 3
            wr.put(n, -5)
            if bn:
                put_bn(wr, n, 0.125 if idx in branch_end else 1.0)
            wr.put(nw, weight_exponent((c // groups) * size * size) + boost)
            w = (w + 2 * pad - (size - 1) * dil - 1) // sx + 1
            h = (h + 2 * pad - (size - 1) * dil - 1) // sy + 1
            c = n
        elif kind == "[connected]":
            inputs = w * h * c
            n = geti(o, "output", 1)
            wr.put(n, -5)
            boost = last_boost if idx == last_weighted else 0
            bn = geti(o, "batch_normalize", 0)
            if idx in branch_end and not bn:
                boost -= 3
            wr.put(n * inputs, weight_exponent(inputs) + boost)
            if bn:
                put_bn(wr, n, 0.125 if idx in branch_end else 1.0)
            w, h, c = 1, 1, n
        elif kind == "[batchnorm]":
            put_bn(wr, c)
        elif kind in ("[maxpool]", "[max]"):
            stride = geti(o, "stride", 1)
            sx = geti(o, "stride_x", stride) if tree == "ab" else stride
            sy = geti(o, "stride_y", stride) if tree == "ab" else stride
            size = geti(o, "size", stride)
            padding = geti(o, "padding", size - 1)
            if tree == "ab" and geti(o, "maxpool_depth", 0):
                raise CfgError("layer %d: maxpool_depth" % idx)
            w = (w + padding - size) // sx + 1
            h = (h + padding - size) // sy + 1
        elif kind in ("[avgpool]", "[avg]"):
            w, h = 1, 1
        elif kind in (
            "[dropout]",
            "[softmax]",
            "[soft]",
            "[cost]",
            "[activation]",
            "[l2norm]",
            "[normalization]",
            "[lrn]",
        ):
            pass
        elif kind == "[route]":
            layers = [atoi(s) for s in o.get("layers", "").split(",") if s]
            if not layers:
                raise CfgError("layer %d: route without layers" % idx)
            groups = max(geti(o, "groups", 1), 1) if tree == "ab" else 1
            srcs = [shapes[li if li >= 0 else idx + li] for li in layers]
            w, h = srcs[0][0], srcs[0][1]
            c = sum(s[2] // groups for s in srcs)
        elif kind == "[shortcut]":
            if o.get("weights_type", "none") != "none":
                raise CfgError("layer %d: [shortcut] weights_type" % idx)
        elif kind == "[crop]":
            w, h = geti(o, "crop_width", 1), geti(o, "crop_height", 1)
        elif kind in ("[reorg]", "[reorg3d]"):
            stride = geti(o, "stride", 1)
            extra = geti(o, "extra", 0) if kind == "[reorg]" and tree == "pj" else 0
            if extra:
                outputs = w * h * c + extra
                w, h, c = 1, 1, outputs
            elif geti(o, "reverse", 0):
                w, h, c = w * stride, h * stride, c // (stride * stride)
            else:
                w, h, c = w // stride, h // stride, c * stride * stride
        elif kind == "[upsample]":
            stride = geti(o, "stride", 2)
            if stride < 0:
                w, h = w // -stride, h // -stride
            else:
                w, h = w * stride, h * stride
        elif kind in ("[scale_channels]", "[sam]"):
            src = atoi(o.get("from", "0"))
            w, h, c = shapes[src if src >= 0 else idx + src][:3]
        else:
            raise CfgError("layer %d: %s has no layout here" % (idx, kind))
        if w <= 0 or h <= 0 or c <= 0:
            raise CfgError("layer %d: %s gives an empty output" % (idx, kind))
        shapes.append((w, h, c, outputs if outputs is not None else w * h * c))
    print("outputs %d" % shapes[-1][3])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tree", choices=("pj", "ab"), required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--last-boost",
        type=int,
        default=3,
        help="the last conv/connected layer's weights are 2^N times larger (default 3)",
    )
    ap.add_argument("cfg")
    ap.add_argument("out")
    a = ap.parse_args()
    try:
        sections = read_cfg(a.cfg)
        with open(a.out, "wb") as out:
            out.write(struct.pack("<iiiQ", 0, 2, 0, 0))
            layout(sections, a.tree, Writer(out, a.seed), a.last_boost)
    except CfgError as e:
        print("%s: %s" % (a.cfg, e), file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
