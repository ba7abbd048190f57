"""``bytehoven dataset | train | export | calibrate | evaluate``: the model's whole pipeline, rerunnable."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Sequence

DEFAULT_HEIGHT, DEFAULT_WIDTH = 40, 256


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bytehoven")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("dataset", help="cut the corpus into row images")
    d.add_argument("--corpus", type=Path, required=True, help="the corpus folder (with manifest.csv)")
    d.add_argument("--out", type=Path, required=True)
    d.add_argument("--height", type=int, default=DEFAULT_HEIGHT)
    d.add_argument("--width", type=int, default=DEFAULT_WIDTH)
    d.add_argument("--jobs", type=int, default=2)
    d.add_argument("--seed", type=int, default=0, help="split seed")
    d.add_argument("--only", choices=("symbolic", "engraved", "scan"), default=None)
    d.add_argument("--engravers", default="verovio,lilypond,musescore",
                   help="engravers of the symbolic scores, comma-separated (default: all three)")
    d.add_argument("--scan-look", type=float, default=None, metavar="P",
                   help="share of engraved pages given the synthetic scan look (default 0.5; 0: none)")
    d.add_argument("--limit", type=int, default=None, metavar="N",
                   help="a small build: at most N sources per composer and kind (splits as in the full build)")
    d.add_argument("--engraver-limit", action="append", default=[], metavar="NAME=N",
                   help="at most N scores per composer for this engraver (e.g. lilypond=15: it needs 3-7 s a "
                        "score); repeatable")
    d.add_argument("--retry-failed", action="store_true",
                   help="engrave again the scores LilyPond or MuseScore failed on in an earlier run")

    t = sub.add_parser("train", help="train (or continue training) the ResNet50")
    t.add_argument("--data", type=Path, required=True)
    t.add_argument("--run", type=Path, required=True, help="folder for checkpoints and the log")
    t.add_argument("--samples", type=int, default=200_000, help="row images to train on in total")
    t.add_argument("--batch", type=int, default=32)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--no-scans", action="store_true", help="do not train on train-split scans")
    t.add_argument("--init", type=Path, default=None, metavar="CHECKPOINT",
                   help="start a new run from this checkpoint's weights (a later training stage); a released "
                        ".onnx model works too")
    t.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                   help="auto (default): bf16 autocast where the CPU has native bf16 (AVX512-BF16, AMX; 1.8x fp32), "
                        "else fp32 (emulated bf16 was 15x slower on an AVX2 CPU)")
    t.add_argument("--no-transposed", action="store_true",
                   help="leave out rows of transposed engravings (to measure what transposition adds)")
    t.add_argument("--leave-out-engraver", action="append", default=[], metavar="NAME",
                   help="train (and select on dev) without the rows of this engraver, e.g. musescore "
                        "(to measure how far the model carries to an engraver it never saw); repeatable")
    t.add_argument("--input", type=_size, default=None, metavar="HxW",
                   help="model input size when not the dataset's own, e.g. 40x256 from a 64x384 build "
                        "(its stored crops are resized)")
    t.add_argument("--warmup", type=int, default=500, help="steps of linear learning-rate warm-up")
    t.add_argument("--minutes", type=float, default=None, metavar="M",
                   help="a budget of training-step time instead of --samples (pilots at equal CPU time): the "
                        "schedule is sized from the first steps' speed; --samples stays an upper bound")
    t.add_argument("--cutmix", type=float, default=0.0, metavar="P",
                   help="share of training rows that get a band of another row (a few bars) pasted in, "
                        "their target mixed by the band's width (a regulariser; 0 = off)")
    t.add_argument("--compile", action="store_true",
                   help="torch.compile the training step (bench/bench_train_step.py: 1.2x bf16 alone on an "
                        "AMX CPU, slower on an AVX512-BF16 one; about 2 minutes of compilation first)")
    t.add_argument("--checkpoint-minutes", type=float, default=10.0, metavar="MINUTES",
                   help="checkpoint (and measure dev rows) this often")
    t.add_argument("--stop-after", type=float, default=None, metavar="MINUTES",
                   help="checkpoint and stop after this long (continue later with the same command)")

    e = sub.add_parser("export", help="calibrate a checkpoint on dev and write the ONNX model")
    e.add_argument("--checkpoint", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True, help="dataset (its dev rows calibrate the model)")
    e.add_argument("--corpus", type=Path, default=None, help="corpus, to record its manifest hash")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--name", default=None)
    e.add_argument("--views", type=int, default=1, metavar="N",
                   help="test-time views per row the app pools (calibrated on dev with as many)")

    c = sub.add_parser("calibrate", help="fit a model's temperatures (engravings, scans), pool sharpness and "
                                         "abstain threshold afresh on a dataset's dev rows, weights untouched")
    c.add_argument("--model", type=Path, required=True)
    c.add_argument("--data", type=Path, default=None, help="a dataset built by `bytehoven dataset` (its dev rows); "
                   "with --corpus, a work folder whose engravings are reused")
    c.add_argument("--corpus", type=Path, default=None,
                   help="calibrate on the corpus's dev groups instead, engraved and cut as `evaluate` does "
                        "(no full build needed)")
    c.add_argument("--jobs", type=int, default=2)
    c.add_argument("--limit", type=int, default=None, metavar="N", help="with --corpus: as for `bytehoven dataset`")
    c.add_argument("--engraver-limit", action="append", default=[], metavar="NAME=N", help="as for `bytehoven dataset`")
    c.add_argument("--out", type=Path, required=True, help="the calibrated model (may be --model itself)")
    c.add_argument("--threads", type=int, default=None)
    c.add_argument("--name", default=None, help="a new model name (users see it; the calibration is part of "
                                                "what a model says)")

    q = sub.add_parser("quantize", help="static int8 QDQ model for CPU, calibrated on dev rows")
    q.add_argument("--model", type=Path, required=True)
    q.add_argument("--data", type=Path, required=True)
    q.add_argument("--out", type=Path, required=True)
    q.add_argument("--rows", type=int, default=512)

    v = sub.add_parser("evaluate", help="measure a model on the test groups and on real scans")
    v.add_argument("--corpus", type=Path, default=None, help="the corpus folder (needed unless --checkpoint)")
    v.add_argument("--model", type=Path, default=None)
    v.add_argument("--checkpoint", type=Path, default=None,
                   help="measure a training checkpoint (or an .onnx model) on the held-out rows of --data "
                        "instead (no export; --split dev for choices)")
    v.add_argument("--views", type=int, default=None, metavar="N",
                   help="with --checkpoint: test-time views per row (default: the model's own, 1 for checkpoints)")
    v.add_argument("--data", type=Path, default=None, help="a dataset built by `bytehoven dataset`: its "
                   "engravings are reused and the rows cut into it (default: --work)")
    v.add_argument("--work", type=Path, default=Path("data/eval"))
    v.add_argument("--out", type=Path, default=Path("runs/evaluation"))
    v.add_argument("--split", default="test")
    v.add_argument("--threads", type=int, default=None)
    v.add_argument("--jobs", type=int, default=2)
    v.add_argument("--engravers", default="verovio,lilypond,musescore",
                   help="engravers of the test scores, comma-separated (default: all three)")
    v.add_argument("--limit", type=int, default=None, metavar="N",
                   help="the held-out sources of a `dataset --limit N` build (at most N sources per composer "
                        "and kind over all splits)")
    v.add_argument("--engraver-limit", action="append", default=[], metavar="NAME=N",
                   help="as for `bytehoven dataset`")
    return p


def _size(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected HEIGHTxWIDTH, e.g. 64x384") from None
    if h < 16 or w < 16:
        raise argparse.ArgumentTypeError(f"{text!r}: at least 16x16")
    return h, w


def _engraver_limits(items: Sequence[str]) -> dict[str, int]:
    out = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not n.strip().isdigit():
            raise SystemExit(f"--engraver-limit {item!r}: write it as NAME=N, e.g. lilypond=15")
        out[name.strip()] = int(n)
    return out


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if args.command == "dataset":
        from .dataset import build

        from .dataset import DEFAULT_SCAN_LOOK

        build(args.corpus, args.out, args.height, args.width, args.jobs, args.seed, args.only,
              engravers=[e.strip() for e in args.engravers.split(",") if e.strip()],
              scan_look=DEFAULT_SCAN_LOOK if args.scan_look is None else args.scan_look, limit=args.limit,
              retry_failed=args.retry_failed, engraver_limits=_engraver_limits(args.engraver_limit))
        return 0
    if args.command == "train":
        from .train import train

        train(args.data, args.run, args.samples, args.batch, args.lr, args.threads,
              checkpoint_minutes=args.checkpoint_minutes, include_scans=not args.no_scans,
              stop_after_minutes=args.stop_after, init=args.init,
              warmup=args.warmup, transposed=not args.no_transposed, leave_out=tuple(args.leave_out_engraver),
              precision=args.precision, input_size=args.input, minutes=args.minutes,
              cutmix=args.cutmix, compiled=args.compile)
        return 0
    if args.command == "export":
        from .corpus import manifest_sha256
        from .export import export

        sha = manifest_sha256(args.corpus) if args.corpus else json.loads(
            (args.data / "dataset.json").read_text()).get("corpus_manifest_sha256", "")
        report = export(args.checkpoint, args.out, args.data, sha, args.name,
                        "bytehoven " + " ".join(shlex.quote(a) for a in argv), args.views)
        print(json.dumps(report, indent=1))
        return 0
    if args.command == "calibrate":
        from .recalibrate import recalibrate

        if args.data is None and args.corpus is None:
            raise SystemExit("calibrate needs --data (a built dataset) or --corpus (its dev groups)")
        print(json.dumps(recalibrate(args.model, args.data, args.out,
                                     "bytehoven " + " ".join(shlex.quote(a) for a in argv), args.threads, args.name,
                                     corpus=args.corpus, jobs=args.jobs, limit=args.limit,
                                     engraver_limits=_engraver_limits(args.engraver_limit)), indent=1))
        return 0
    if args.command == "quantize":
        from .quantize import quantize

        print(json.dumps(quantize(args.model, args.data, args.out, args.rows), indent=1))
        return 0
    if args.command == "evaluate":
        from .evaluate import evaluate, evaluate_checkpoint

        if args.checkpoint is not None:
            if args.data is None:
                raise SystemExit("evaluate --checkpoint needs --data (a dataset built by `bytehoven dataset`)")
            evaluate_checkpoint(args.checkpoint, args.data, args.out, args.split, args.views)
            return 0
        if args.corpus is None:
            raise SystemExit("evaluate needs --corpus (or --checkpoint with --data)")
        evaluate(args.corpus, args.model, args.data, args.work, args.out, args.split, args.threads, args.jobs,
                 [e.strip() for e in args.engravers.split(",") if e.strip()], args.limit,
                 _engraver_limits(args.engraver_limit))
        return 0
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main(sys.argv[1:]))
