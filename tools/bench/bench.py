"""`make bench`: darknetp against PyTorch, threads, the TEE's overhead, GEMM, per-layer times.

Runs bench_dnn (the darknetp side, C, linked with the library) and bench_torch.py (a PyTorch
worker) in rounds, alternating which side goes first, and reports each figure as the median
with the min-max range over the rounds; every ratio is taken within one round and then
summarised the same way. Figures are per CPU second of the thread doing the work (for the
TEE runs: of darknetp and the simulated TEE's processes); wall time goes to the CSV beside
it, since on a shared machine it also counts other people's processes. Two exceptions:
- threads: training on 1 thread and on all online cores in WALL images/s (one thread's CPU
  time says nothing of the others'), two networks in one bench_dnn process, steps alternated
  (threads-pair), the ratios of each pair pooled over the rounds as the TEE's are; beside a
  control: as many busy threads against one, which says how much of the machine the bench
  actually got;
- the TEE: each partition and the run without TEE open in one bench_dnn process, steps
  alternated A B, B A, ..., each timed step after an untimed one of its own side
  (tools/bench/bench_tee.c says why); the ratio of each pair's times (CPU, and wall on a row
  of its own) is pooled over the rounds: median [min-max], the interquartile range and the
  number of pairs. A control row pairs two networks without TEE the same way: how far from
  1 the method itself reads.

Environment: BENCH_QUICK=1 (a short run), BENCH_ROUNDS=N, BENCH_CSV=FILE, BENCH_PLOT=FILE.svg.
`--self-test` checks the parser, the statistics and the CSV/SVG writers on canned output.
"""
import argparse
import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET

LENET = "tests/fixtures/darknet-mnist-lenet/mnist_lenet.cfg"
VGG7 = "cfg/vgg-7_cifar10.cfg"
TORCH_PYTHON = "/usr/bin/python3"  # Debian's, where python3-torch lives
CONTROL = "control: no TEE on either side"


def online_cores():
    """The machine's online cores, as darknetp's default -threads (dz_online_cores)."""
    try:
        return max(1, os.sysconf("SC_NPROCESSORS_ONLN"))
    except (ValueError, OSError):
        return os.cpu_count() or 1


def settings(quick):
    """What to run. Quick: fewer iterations and pairs, VGG-7 at batch 5, shorter GEMM timings.
    The per-layer table trains VGG-7 at batch 10 (5 quick): its times grow with the batch,
    and one step at batch 50 costs seconds."""
    vgg_batch = 5 if quick else 50
    lenet_parts = [("last 4..10", 4, 10), ("back half 5..10", 5, 10), ("all 0..10", 0, 10)]
    # Only the softmax and the cost in the TA, a few us of work: what is left of its ratio,
    # and its "TEE CPU" row, is the price of a call itself, whatever the segment computes.
    # At batch 100 it sits beside the "last 4..10" row, the bar's, so that the floor the
    # simulator's world switch sets under that row is read in the same run.
    lenet_call = [("softmax, cost 9..10", 9, 10)]
    # Both sides without TEE, paired as the partitions are: the method's own reading of 1.
    control = [(CONTROL, -1, -1)]
    # The last layers paired with the call alone (side A with 9..10 in the TEE instead of no
    # TEE): what the segment costs beyond the price of the call, in pairs of its own.
    lenet_net = [("last 4..10 over 9..10", 4, 10, 9, 10)]
    # VGG-7 keeps only its last 4 layers resident at batch 1 (`darknetp tee plan`); longer
    # tails stream their weights, sealed, chunk by chunk. In training at batch 50 only 9..11
    # fit (8..11 at batch 5), and nothing streams there.
    vgg_infer_parts = [("last 8..11", 8, 11), ("back half 6..11, streamed", 6, 11),
                       ("all 0..11, streamed", 0, 11)]
    vgg_train_parts = [("last 8..11", 8, 11)] if quick else [("last 9..11", 9, 11)]
    return {
        "rounds": 2 if quick else 5,
        # (network, cfg, mode, batch, iterations, warm-up iterations)
        "compare": [
            ("LeNet", LENET, "train", 100, 5 if quick else 20, 1),
            ("LeNet", LENET, "infer", 1, 100 if quick else 500, 10),
            ("LeNet", LENET, "infer", 100, 5 if quick else 20, 1),
            # One untimed step first on both sides: darknetp's first step also faults in
            # its arena (462 MB at batch 50, about 5% of a step under perf), which PyTorch's
            # worker process, reusing its allocator's memory, never pays again.
            ("VGG-7", VGG7, "train", vgg_batch, 1, 1),
            ("VGG-7", VGG7, "infer", 1, 3 if quick else 10, 1),
            ("VGG-7", VGG7, "infer", vgg_batch if quick else 100, 1, 1),
        ],
        # Training on 1 thread and on all cores, wall time, step against step in one process
        # (bench_dnn threads-pair). Separate runs of 2 VGG-7 steps a side read 1.50 and 1.73
        # in two quiet runs of the bench; pairs pooled over rounds swing less.
        # (network, cfg, batch, pairs per round, warm-up pairs)
        "threads": [("LeNet", LENET, 100, 5 if quick else 20, 1),
                    ("VGG-7", VGG7, vgg_batch, 1 if quick else 3, 1)],
        "threads_n": online_cores(),
        "spin_steps": 10**8 if quick else 3 * 10**8,  # about 0.13 s / 0.4 s of one core
        # The TEE, paired step by step with the run without it in one process (bench_dnn
        # tee-pair). (network, cfg, mode, batch, pairs per round, warm-up, [(name, first, last)
        # or (name, first, last, side A's first, side A's last)])
        # The pairs are many where steps are short: under load the pair ratios of a LeNet step
        # spread by +-10% (interquartile), and the median's 95% interval narrows with the
        # square root of their number, to about +-1% over 500 pairs.
        # LeNet trains at its cfg's batch of 100 (the seed's command, and the batch of the
        # other LeNet training figures) where the segment fits: all 11 layers at batch 100
        # need 8.7 MB of secure memory, over the TA's default TA_DATA_SIZE of 6 MiB, so every
        # partition also trains at batch 50.
        "tee": [
            ("LeNet", LENET, "train", 100, 10 if quick else 100, 2,
             lenet_parts[:2] + lenet_call + lenet_net + control),
            ("LeNet", LENET, "train", 50, 20 if quick else 100, 2, lenet_parts + lenet_call),
            ("LeNet", LENET, "infer", 100, 10 if quick else 100, 2, lenet_parts),
            ("LeNet", LENET, "infer", 1, 100 if quick else 1000, 10, lenet_parts),
            ("VGG-7", VGG7, "infer", 1, 5 if quick else 40, 1, vgg_infer_parts),
            ("VGG-7", VGG7, "train", vgg_batch, 2 if quick else 3, 1, vgg_train_parts),
        ],
        "gemm_nets": [("LeNet", LENET, 100), ("VGG-7", VGG7, vgg_batch)],
        "gemm_seconds": 0.02 if quick else 0.1,
        "peak_seconds": 0.2 if quick else 0.5,
        # (network, cfg, batch, iterations, warm-up)
        "layers": [("LeNet", LENET, 100, 3 if quick else 10, 1),
                   ("VGG-7", VGG7, 5 if quick else 10, 1, 0)],
    }


# ------------------------------------------------------------------------- parsing


def parse(text):
    """The `BENCH id wall cpu work unit [label]` lines of a run; a FAIL line raises."""
    out = []
    for line in text.splitlines():
        if line.startswith("FAIL"):
            raise RuntimeError(line[5:].strip())
        if not line.startswith("BENCH "):
            continue
        f = line.split(" ", 6)
        out.append({"id": f[1], "wall": float(f[2]), "cpu": float(f[3]), "work": float(f[4]),
                    "unit": f[5], "label": f[6] if len(f) > 6 else ""})
    return out


def parse_pairs(text):
    """bench_dnn tee-pair's output: its BENCH lines, the PAIR lines as (order, a_wall, a_cpu,
    b_wall, b_cpu, b_tee: the TEE processes' share of b_cpu) and the RATIO lines by clock
    ({"cpu": {median, min, max, q1, q3, n}})."""
    pairs, ratios = [], {}
    for line in text.splitlines():
        f = line.split()
        if line.startswith("PAIR "):
            pairs.append((f[2], *map(float, f[3:8])))
        elif line.startswith("RATIO "):
            ratios[f[1]] = dict(zip(("median", "min", "max", "q1", "q3"), map(float, f[2:7])),
                                n=int(f[7]))
    return {"bench": parse(text), "pairs": pairs, "ratios": ratios}


def rate(r, clock="cpu"):
    """Work per second: images/s, or GFLOP/s for flop."""
    scale = 1e-9 if r["unit"] == "flop" else 1.0
    return r["work"] * scale / r[clock] if r[clock] > 0 else float("nan")


# ------------------------------------------------------------------------- results


class Results:
    """Samples per row key, one per round: figures, wall figures, and ratios."""

    def __init__(self):
        self.rows = {}  # key -> dict; insertion order is the report's order

    def add(self, section, case, side, unit, value, wall=None, ratio=None, ratio_to="", label="",
            ratios=None):
        """One round's figure; its ratio, or with `ratios` every pair ratio of the round (the
        row then pools them over rounds and the table adds their quartiles)."""
        row = self.rows.setdefault((section, case, side), {
            "section": section, "case": case, "side": side, "unit": unit, "values": [],
            "walls": [], "ratios": [], "ratio_to": ratio_to, "label": label, "pooled": False})
        row["values"].append(value)
        if wall is not None:
            row["walls"].append(wall)
        if ratio is not None:
            row["ratios"].append(ratio)
        if ratios is not None:
            row["ratios"].extend(ratios)
            row["pooled"] = True


def summary(values):
    """(median, min, max) or three empty strings."""
    if not values:
        return ("", "", "")
    return (statistics.median(values), min(values), max(values))


def quartiles(values):
    """(first, third quartile), interpolated as bench_dnn's RATIO lines, or two empty strings."""
    if len(values) < 2:
        return ("", "") if not values else (values[0], values[0])
    q = statistics.quantiles(values, n=4, method="inclusive")
    return (q[0], q[2])


def median_ci(values):
    """The ranks that bound the median at about 95% confidence whatever the distribution (the
    binomial rule: ranks (n - 1.96 sqrt n) / 2 and 1 + (n + 1.96 sqrt n) / 2 of the sorted
    values), or two empty strings under 6 values. Pairs are not quite independent (load
    comes in bursts longer than a step), so read it as a guide, not a guarantee."""
    n = len(values)
    if n < 6:
        return ("", "")
    v = sorted(values)
    lo = max(1, math.floor((n - 1.96 * math.sqrt(n)) / 2))
    hi = min(n, math.ceil(1 + (n + 1.96 * math.sqrt(n)) / 2))
    return (v[lo - 1], v[hi - 1])


CSV_FIELDS = ["section", "case", "side", "unit", "median", "min", "max", "wall_median", "rounds",
              "ratio_to", "ratio_median", "ratio_min", "ratio_max", "ratio_q1", "ratio_q3",
              "ratio_ci_low", "ratio_ci_high", "ratio_samples", "label"]


def write_csv(results, path):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CSV_FIELDS)
        for row in results.rows.values():
            med, lo, hi = summary(row["values"])
            rmed, rlo, rhi = summary(row["ratios"])
            q1, q3 = quartiles(row["ratios"])
            c1, c2 = median_ci(row["ratios"])
            w.writerow([row["section"], row["case"], row["side"], row["unit"], fmt(med), fmt(lo),
                        fmt(hi), fmt(summary(row["walls"])[0]), len(row["values"]), row["ratio_to"],
                        fmt(rmed), fmt(rlo), fmt(rhi), fmt(q1), fmt(q3), fmt(c1), fmt(c2),
                        len(row["ratios"]),
                        row["label"]])


def fmt(v):
    return "" if v == "" else f"{v:.6g}"


def cell(values, digits=1):
    """'median [min-max]' for the table."""
    if not values:
        return "-"
    med, lo, hi = summary(values)
    if len(values) == 1:
        return f"{med:.{digits}f}"
    return f"{med:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def ratio_cell(row):
    """The table's ratio: median [min-max] over rounds, or for pooled pair ratios also the
    interquartile range, the median's 95% interval and the number of pairs, to three
    decimals: 1% must be readable."""
    if not row["pooled"] or not row["ratios"]:
        return cell(row["ratios"], 2)
    q1, q3 = quartiles(row["ratios"])
    c1, c2 = median_ci(row["ratios"])
    ci = f" CI {c1:.3f}-{c2:.3f}" if c1 != "" else ""
    return f"{cell(row['ratios'], 3)} IQR {q1:.3f}-{q3:.3f}{ci}, {len(row['ratios'])} pairs"


def print_table(results, out=sys.stdout):
    sections = {}
    for row in results.rows.values():
        sections.setdefault(row["section"], []).append(row)
    for section, rows in sections.items():
        lines = [("case", "side", "unit", "median [min-max]", "ratio", "ratio to")]
        for r in rows:
            digits = 3 if r["unit"] == "ms" and max(r["values"]) < 1 else (2 if r["unit"] == "%" else 1)
            lines.append((r["case"], r["side"], r["unit"], cell(r["values"], digits),
                          ratio_cell(r), r["ratio_to"]))
        widths = [max(len(l[i]) for l in lines) for i in range(len(lines[0]))]
        print(f"\n== {section}", file=out)
        for l in lines:
            print("  ".join(c.ljust(w) for c, w in zip(l, widths)).rstrip(), file=out)


def write_svg(results, path):
    """Horizontal bars of the ratios (median, min-max whisker), one panel per section."""
    panels = {}
    for row in results.rows.values():
        if row["ratios"] and row["ratio_to"] != "share of forward+backward":
            panels.setdefault((row["section"], row["ratio_to"]), []).append(row)
    bar_h, left, width, top = 16, 440, 420, 30
    height = top + sum(40 + bar_h * 1.5 * len(rows) for rows in panels.values()) + 10
    svg = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", width=str(left + width + 80),
                     height=str(int(height)), style="font-family:sans-serif;font-size:11px")
    ET.SubElement(svg, "text", x="10", y="18", style="font-size:14px").text = \
        "darknetp bench: ratios, median and min-max over rounds (CPU time unless marked wall)"
    y = top
    for (section, ratio_to), rows in panels.items():
        y += 20
        ET.SubElement(svg, "text", x="10", y=str(y), style="font-weight:bold").text = \
            f"{section}: {ratio_to}"
        y += 10
        scale = width / max(max(r["ratios"]) for r in rows) / 1.05
        for r in rows:
            med, lo, hi = summary(r["ratios"])
            ET.SubElement(svg, "text", x="10", y=str(y + bar_h - 4)).text = f"{r['case']} {r['side']}"
            ET.SubElement(svg, "rect", x=str(left), y=str(y), width=f"{med * scale:.1f}",
                          height=str(bar_h - 2), fill="#4a7ab5")
            ET.SubElement(svg, "line", x1=f"{left + lo * scale:.1f}", x2=f"{left + hi * scale:.1f}",
                          y1=str(y + bar_h // 2), y2=str(y + bar_h // 2), stroke="black")
            ET.SubElement(svg, "text", x=f"{left + hi * scale + 4:.1f}", y=str(y + bar_h - 4)).text = \
                f"{med:.2f}"
            y += bar_h * 1.5
        ET.SubElement(svg, "line", x1=str(left), x2=str(left), y1=str(y - bar_h * 1.5 * len(rows)),
                      y2=str(y), stroke="black")
        if scale * 1.0 <= width:  # a dashed line at ratio 1
            ET.SubElement(svg, "line", x1=f"{left + scale:.1f}", x2=f"{left + scale:.1f}",
                          y1=str(y - bar_h * 1.5 * len(rows)), y2=str(y), stroke="gray",
                          **{"stroke-dasharray": "3,3"})
        y += 10
    ET.ElementTree(svg).write(path, encoding="unicode")


# ------------------------------------------------------------------------- running


class Sides:
    """The two programs: bench_dnn per measurement, one long-lived PyTorch worker."""

    def __init__(self, driver, tmp, with_torch=True):
        self.driver = driver
        self.env = dict(os.environ, DZ_TEE_LOG=os.path.join(tmp, "tee.log"),
                        DZ_TEE_STORAGE=os.path.join(tmp, "tee-storage"))
        self.torch = None
        if not with_torch:
            return
        worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench_torch.py")
        self.torch = subprocess.Popen([TORCH_PYTHON, worker], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, text=True)
        self.torch_version = self.torch.stdout.readline().strip().replace("READY ", "")

    def c_text(self, *args, threads=1):
        """bench_dnn's stdout; `threads` goes to BENCH_THREADS."""
        env = dict(self.env, BENCH_THREADS=str(threads))
        p = subprocess.run([self.driver, *map(str, args)], capture_output=True, text=True, env=env)
        if p.returncode != 0 and "FAIL" not in p.stdout:
            raise RuntimeError(f"{self.driver} {' '.join(map(str, args))}: {p.stderr.strip()}")
        return p.stdout

    def c(self, *args, threads=1):
        return parse(self.c_text(*args, threads=threads))

    def py(self, **req):
        self.torch.stdin.write(json.dumps(req) + "\n")
        self.torch.stdin.flush()
        lines = []
        for line in self.torch.stdout:
            if line.strip() == "DONE":
                return parse("".join(lines))
            lines.append(line)
        raise RuntimeError("the PyTorch worker stopped")

    def close(self):
        if self.torch:
            self.torch.stdin.close()
            self.torch.wait()


def parse_thread_pairs(text):
    """bench_dnn threads-pair's output: [(one thread's step, N threads' step)] as BENCH rows,
    in step order (a pair's two steps come in either order), and its THREADS line's verdict."""
    steps = [r for r in parse(text) if r["id"] in ("pair/1", "pair/N")]
    pairs = []
    for i in range(0, len(steps) - 1, 2):
        two = {r["id"]: r for r in steps[i:i + 2]}
        if set(two) == {"pair/1", "pair/N"}:
            pairs.append((two["pair/1"], two["pair/N"]))
    verdict = [l.split()[-1] for l in text.splitlines() if l.startswith("THREADS ")]
    return pairs, (verdict[0] if verdict else "")


def threads_round(sides, cfg, rnd, res):
    """Training on 1 thread and on N = the online cores, step against step in one process
    (bench_dnn threads-pair: two networks, which one goes first alternating), wall time (the
    CPU time of one thread says nothing of the others'); the pair ratios pool over rounds.
    Then the control: N busy threads against one, in separate runs whose order alternates
    between rounds: the most any threading could gain just then, since the machine is
    shared."""
    n = cfg["threads_n"]
    section = f"darknetp training, 1 thread and {n}, wall time"
    order = (1, n) if rnd % 2 == 0 else (n, 1)
    if n < 2:
        return  # one core: nothing to compare
    for net, path, batch, pairs, warm in cfg["threads"]:
        got, verdict = parse_thread_pairs(
            sides.c_text("threads-pair", path, batch, pairs, warm, threads=n))
        if verdict != "same" or not got:
            raise RuntimeError(f"threads-pair {path}: the losses on 1 and {n} threads differ"
                               if verdict == "differ" else f"threads-pair {path}: no pairs")
        for t, k in ((1, 0), (n, 1)):
            wall = statistics.median(p[k]["wall"] for p in got)
            res.add(section, f"{net} train batch {batch}", f"{t} thread{'s' if t > 1 else ''}",
                    "images/s", batch / wall, wall=batch / wall,
                    ratios=[p[0]["wall"] / p[1]["wall"] for p in got] if t == n else None,
                    ratio_to=f"{n}/1 thread speed" if t == n else "")
    got = {t: sides.c("spin", t, cfg["spin_steps"])[0] for t in order}
    for t in (1, n):
        res.add(section, "control: busy loops", f"{t} thread{'s' if t > 1 else ''}", "Msteps/s",
                rate(got[t], "wall") * 1e-6, wall=rate(got[t], "wall") * 1e-6,
                ratio=rate(got[n], "wall") / rate(got[1], "wall") if t == n else None,
                ratio_to=f"{n}/1 thread speed" if t == n else "")


def tee_round(sides, cfg, res):
    """Each partition paired step by step with the run without TEE in one bench_dnn process
    (tee-pair): the ratios of a round's pairs join the row's, pooled over rounds."""
    section = "simulated TEE overhead, paired steps, 1 thread each side, on one CPU"
    for net, path, mode, batch, pairs, warm, parts in cfg["tee"]:
        case = f"{net} {mode} batch {batch}"
        for name, first, last, *base in parts:
            try:
                got = parse_pairs(sides.c_text("tee-pair", path, batch, pairs, warm, first, last,
                                               mode, *base))
            except RuntimeError as e:
                print(f"  {case} {name}: {e}", file=sys.stderr)
                continue
            b = dict((r["id"], r) for r in got["bench"])
            none, tee = b["pair/none"], b["pair/tee"]
            # Side A: no TEE, or (with a base) its own segment, whose row this is not.
            against = f"with {base[0]}..{base[1]} in the TEE" if base else "without TEE"
            if not base:
                res.add(section, case, "none", "images/s", rate(none), wall=rate(none, "wall"))
            res.add(section, case, name, "images/s", rate(tee), wall=rate(tee, "wall"),
                    ratios=[p[4] / p[2] for p in got["pairs"]],
                    ratio_to=f"time / time {against}")
            res.add(section, case, f"{name}, wall", "images/s wall", rate(tee, "wall"),
                    ratios=[p[3] / p[1] for p in got["pairs"]],
                    ratio_to=f"wall time / wall time {against}")
            if first < 0 or base:
                continue
            # The TEE processes' CPU per step: the segment's work plus the price of the call.
            res.add(section, case, f"{name}, TEE CPU", "us/step",
                    statistics.median(p[5] for p in got["pairs"]) * 1e6)


def one_round(sides, cfg, rnd, res):
    # darknetp against PyTorch; the side that goes first alternates between rounds.
    for net, path, mode, batch, iters, warm in cfg["compare"]:
        runs = [("darknetp", lambda: sides.c(mode, path, batch, iters, warm)),
                ("PyTorch", lambda: sides.py(cmd=mode, cfg=path, batch=batch, iters=iters, warmup=warm))]
        got = dict((name, fn()[0]) for name, fn in (runs if rnd % 2 == 0 else runs[::-1]))
        case = f"{net} {mode} batch {batch}"
        for side in ("darknetp", "PyTorch"):
            res.add("darknetp vs PyTorch, 1 thread", case, side, "images/s", rate(got[side]),
                    wall=rate(got[side], "wall"),
                    ratio=rate(got["darknetp"]) / rate(got["PyTorch"]) if side == "darknetp" else None,
                    ratio_to="darknetp/PyTorch speed" if side == "darknetp" else "")
    threads_round(sides, cfg, rnd, res)
    tee_round(sides, cfg, res)
    # GEMM against this round's FMA peak, darknetp's dnn_gemm and PyTorch's torch.mm.
    peak = sides.c("peak", cfg["peak_seconds"])[0]
    res.add("GEMM, GFLOP/s", "FMA peak", peak["label"].split(",")[0], "GFLOP/s", rate(peak), wall=rate(peak, "wall"))
    for net, path, batch in cfg["gemm_nets"] + [("square", None, 0)]:
        if path:
            ours = sides.c("gemm", path, batch, cfg["gemm_seconds"])
        else:
            ours = [sides.c("gemm-size", op, 512, 512, 512, cfg["gemm_seconds"])[0] for op in ("NN", "NT", "TN")]
        shapes = [[i["id"].split("/")[1][0] == "T", i["id"].split("/")[1][1] == "T",
                   *map(int, i["id"].split("/")[2].split("x"))] for i in ours]
        theirs = {r["id"]: r for r in sides.py(cmd="gemm", shapes=shapes, seconds=cfg["gemm_seconds"])}
        for r in ours:
            shape = r["id"][5:]
            case = f"{net} {shape}" + (f" ({r['label']})" if path else "")
            res.add("GEMM, GFLOP/s", case, "dnn_gemm", "GFLOP/s", rate(r), wall=rate(r, "wall"),
                    ratio=rate(r) / rate(peak), ratio_to="fraction of FMA peak")
            if r["id"] in theirs:
                t = theirs[r["id"]]
                res.add("GEMM, GFLOP/s", case, "torch.mm", "GFLOP/s", rate(t), wall=rate(t, "wall"),
                        ratio=rate(r) / rate(t), ratio_to="dnn_gemm/torch.mm")
    # Per-layer forward and backward time of one training step, darknetp.
    for net, path, batch, iters, warm in cfg["layers"]:
        rows = sides.c("layers", path, batch, iters, warm)
        total = sum(r["cpu"] for r in rows)
        for r in rows:
            _, index, way = r["id"].split("/")
            res.add(f"darknetp per layer, {net} training batch {batch}, ms per step",
                    f"{index:>2} {r['label']}", way, "ms", r["cpu"] * 1e3, wall=r["wall"] * 1e3,
                    ratio=r["cpu"] / total if total > 0 else None, ratio_to="share of forward+backward")


def self_test(driver):
    """The parser, statistics, table, CSV and SVG on canned lines, then bench_dnn's own output
    on one-iteration runs (its format, not its speed); an AssertionError on a mismatch."""
    text = ("noise\nBENCH train 0.5 0.25 100 images a.cfg\n"
            "BENCH gemm/NT/6x75x576 0.001 0.0005 518400 flop layer 0 conv forward\n")
    got = parse(text)
    assert len(got) == 2 and got[0]["id"] == "train" and got[1]["label"] == "layer 0 conv forward"
    assert rate(got[0]) == 400.0 and rate(got[0], "wall") == 200.0
    assert abs(rate(got[1]) - 1.0368) < 1e-9
    try:
        parse("FAIL layers 0..10 need 8738304 bytes\n")
        raise AssertionError("a FAIL line was accepted")
    except RuntimeError as e:
        assert "8738304" in str(e)
    res = Results()
    for v, t in ((400, 100), (300, 150), (500, 100)):
        res.add("S", "c", "darknetp", "images/s", v, wall=v / 2, ratio=v / t, ratio_to="x")
    row = res.rows[("S", "c", "darknetp")]
    assert summary(row["values"]) == (400, 300, 500) and summary(row["ratios"]) == (4.0, 2.0, 5.0)
    assert cell(row["values"]) == "400.0 [300.0-500.0]"
    pair_text = ("I/TA: noise\nPAIR 0 AB 0.2 0.1 0.21 0.11 0.01\nPAIR 1 BA 0.4 0.2 0.42 0.2 0.02\n"
                 "PAIR 2 AB 0.3 0.1 0.3 0.1 0.01\nRATIO cpu 1.000000 1.000000 1.100000 1.000000 "
                 "1.050000 3\nBENCH pair/none 0.3 0.1 1 images x\nBENCH pair/tee 0.3 0.11 1 images x\n")
    pp = parse_pairs(pair_text)
    assert len(pp["pairs"]) == 3 and pp["pairs"][1] == ("BA", 0.4, 0.2, 0.42, 0.2, 0.02)
    assert pp["ratios"]["cpu"]["q3"] == 1.05 and pp["ratios"]["cpu"]["n"] == 3
    assert [r["id"] for r in pp["bench"]] == ["pair/none", "pair/tee"]
    cpu_ratios = [p[4] / p[2] for p in pp["pairs"]]
    q1, q3 = quartiles(cpu_ratios)  # of 1.0, 1.0, 1.1: a quarter and three between neighbours
    assert q1 == 1.0 and abs(q3 - 1.05) < 1e-12
    for rnd in range(2):
        res.add("T", "c", "tee", "images/s", 10, ratios=cpu_ratios)
    tee_row = res.rows[("T", "c", "tee")]
    assert len(tee_row["ratios"]) == 6 and tee_row["pooled"] and len(tee_row["values"]) == 2
    assert ratio_cell(tee_row) == "1.000 [1.000-1.100] IQR 1.000-1.075 CI 1.000-1.100, 6 pairs"
    # 100 values 1..100: ranks 40 and 61 bound the median
    assert median_ci(list(range(100, 0, -1))) == (40, 61) and median_ci([1, 2]) == ("", "")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "b.csv")
        write_csv(res, path)
        with open(path) as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 2 and rows[0]["median"] == "400" and rows[0]["ratio_max"] == "5"
        assert rows[0]["rounds"] == "3" and rows[0]["wall_median"] == "200"
        assert rows[0]["ratio_q1"] == "3" and rows[0]["ratio_q3"] == "4.5"
        assert rows[1]["ratio_samples"] == "6" and rows[1]["ratio_q3"] == "1.075"
        svg = os.path.join(tmp, "b.svg")
        write_svg(res, svg)
        assert ET.parse(svg).getroot().tag.endswith("svg")
        if driver and os.path.exists(driver):
            sides = Sides(driver, tmp, with_torch=False)
            infer = sides.c("infer", LENET, 2, 1, 0)
            assert [r["id"] for r in infer] == ["infer"] and infer[0]["work"] == 2
            assert infer[0]["unit"] == "images" and infer[0]["cpu"] > 0
            layers = sides.c("layers", LENET, 2, 1, 0)
            assert [r["id"] for r in layers[:2]] == ["layer/0/fwd", "layer/0/bwd"] and len(layers) == 22
            assert layers[0]["label"].startswith("conv 5x5/1 28x28x3 -> 28x28x6")
            gemm = sides.c("gemm", LENET, 2, 0.001)
            assert gemm[0]["id"] == "gemm/NN/6x784x75" and gemm[0]["work"] == 2 * 6 * 784 * 75
            assert sides.c("tee", LENET, 2, 1, 0, 4, 10, "train")[0]["id"] == "train"
            pair = parse_pairs(sides.c_text("tee-pair", LENET, 2, 3, 0, 4, 10, "train"))
            assert [p[0] for p in pair["pairs"]] == ["AB", "BA", "AB"]
            assert all(p[2] > 0 and p[4] > 0 and 0 < p[5] <= p[4] for p in pair["pairs"])
            assert set(pair["ratios"]) == {"cpu", "wall"} and pair["ratios"]["cpu"]["n"] == 3
            med = statistics.median(p[4] / p[2] for p in pair["pairs"])
            assert abs(pair["ratios"]["cpu"]["median"] - med) < 1e-5 * med
            assert [r["id"] for r in pair["bench"]] == ["pair/none", "pair/tee"]
            # One thread each side: on one CPU; its TEE's share is a part of its CPU time.
            assert re.search(r"pinned to CPU \d+$", pair["bench"][1]["label"])
            # Side A with a segment of its own: both sides pay a call, B's segment is larger.
            based = parse_pairs(sides.c_text("tee-pair", LENET, 2, 2, 0, 4, 10, "train", 9, 10))
            assert len(based["pairs"]) == 2
            assert "layers 4..10 against 9..10" in based["bench"][1]["label"]
            assert all(p[4] > 0 and 0 < p[5] <= p[4] for p in based["pairs"])
            spin = sides.c("spin", 2, 1000)[0]
            assert spin["id"] == "spin" and spin["work"] == 2000 and spin["unit"] == "steps"
            train2 = sides.c("train", LENET, 2, 1, 0, threads=2)[0]
            assert train2["label"].endswith("threads 2") and train2["wall"] > 0
            tp, verdict = parse_thread_pairs(sides.c_text("threads-pair", LENET, 2, 3, 0, threads=2))
            assert verdict == "same" and len(tp) == 3
            assert all(a["id"] == "pair/1" and b["id"] == "pair/N" and a["wall"] > 0 < b["wall"]
                       for a, b in tp)
            try:
                sides.c("tee", LENET, 100, 1, 0, 0, 10, "train")
                raise AssertionError("a partition over TA_DATA_SIZE was accepted")
            except RuntimeError as e:
                assert "TA_DATA_SIZE" in str(e)
            print(f"bench-check: {driver} prints what the parser reads")
    print("bench-check: parser, statistics, CSV and SVG writers agree with the canned run")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--driver", default="build/tools/bench/bench_dnn")
    ap.add_argument("--out", default="build/bench", help="folder for bench.csv")
    ap.add_argument("--plot", default=os.environ.get("BENCH_PLOT") or None, help="SVG chart to write")
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test(args.driver)
    quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
    cfg = settings(quick)
    rounds = int(os.environ.get("BENCH_ROUNDS", cfg["rounds"]))
    os.makedirs(args.out, exist_ok=True)
    csv_path = os.environ.get("BENCH_CSV") or os.path.join(args.out, "bench.csv")
    res = Results()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        sides = Sides(args.driver, tmp)
        print(f"bench: {'quick, ' if quick else ''}{rounds} rounds, darknetp vs PyTorch {sides.torch_version}"
              f" on 1 thread; figures per CPU second (threads: wall), median [min-max] over rounds;"
              f" TEE ratios pooled over pairs of steps")
        try:
            # PyTorch keeps the kernels it builds (oneDNN's) for the process's life: build them
            # once, so that cases without warm-up iterations time only compute on that side
            # too. darknetp builds nothing of the kind; each of its runs is a new process.
            for _, path, mode, batch, _, _ in cfg["compare"]:
                sides.py(cmd=mode, cfg=path, batch=batch, iters=1, warmup=0)
            for rnd in range(rounds):
                one_round(sides, cfg, rnd, res)
                print(f"  round {rnd + 1}/{rounds} done at {time.monotonic() - start:.0f} s", flush=True)
        finally:
            sides.close()
    print_table(res)
    write_csv(res, csv_path)
    print(f"\nCSV: {csv_path}")
    if args.plot:
        write_svg(res, args.plot)
        print(f"SVG: {args.plot}")
    print(f"bench: {time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
