"""Composed heads on a hard composition: parties whose species share acoustic niches.

Synthetic calls (``chorus.data.synth``) of four taxon groups (birds, anurans, insects,
mammals), the same species recorded in several regions (same seed: same species, other
background and channel), low SNR, overlapping distractor calls. The species are dealt to
``--parties`` parties round-robin within each taxon group, so every party holds species of
every niche and no party can be told apart by frequency band: a composed classifier must
separate acoustically overlapping species that were never trained together.

Frozen encoder (``sfx-cnn``, pooled ``--layer``), so base statistics are exact. Compared on
the test clips (all-species accuracy, ``N``-way over every party's species):

- ``zscore``: each party's logistic probe (LP-FT's probe, penalty on its own validation
  clips, :func:`chorus.evaluate.probe_baseline.probe_vector`) composed with today's z-score
  calibration (:func:`chorus.taskvec.merge.compose_heads`);
- ``zscore+gate``: the same plus a group gate fitted on the composer's validation clips,
  strength chosen on them;
- ``lda (γ)``: the composed statistics head from every party's class statistics
  (``classstats.safetensors`` written and loaded through the task-vector artifact), for
  each ridge γ; ``lda*``: γ chosen on validation clips;
- ``gauss-sample logistic``: a logistic probe fitted on draws from the pooled Gaussian
  model of the same statistics (at γ*), the other statistics-only head the issue names;
- ``pooled probe``: one logistic probe trained on all parties' training clips together;
- ``pooled lda``: the LDA head fitted directly (numpy) on the pooled training features,
  at the chosen γ — the composed one must equal it.

Usage: ``python benchmarks/composition_heads.py [--seeds 0,1,2] [--out /tmp/chorus-heads]``.
Prints per-seed rows, then mean ± std over seeds (the last lines).
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from chorus.data.clipset import load_eval_audio  # noqa: E402
from chorus.data.manifest import Clip  # noqa: E402
from chorus.data.synth import generate_dataset, make_config  # noqa: E402
from chorus.encoders import load_encoder  # noqa: E402
from chorus.evaluate import layer_features  # noqa: E402
from chorus.evaluate.probe_baseline import probe_vector  # noqa: E402
from chorus.model import ClassifierSettings  # noqa: E402
from chorus.taskvec import TaskVector  # noqa: E402
from chorus.taskvec.classstats import ClassStatistics, write_class_stats  # noqa: E402
from chorus.taskvec.fingerprint import base_fingerprint  # noqa: E402
from chorus.taskvec.merge import compose_heads  # noqa: E402
from chorus.taskvec.merge.errors import StatisticsError  # noqa: E402
from chorus.taskvec.merge.heads import GroupGate  # noqa: E402
from chorus.taskvec.merge.stats_head import DEFAULT_SHRINKAGE, pool_statistics  # noqa: E402
from chorus.train.probe_init import probe_head

torch.set_num_threads(1)
TAXA = ("birds", "anurans", "insects", "mammals")
SHRINKAGES = (0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
GATES = (0.1, 0.3, 1.0, 3.0)


def dataset(out: Path, seed: int, args) -> list[Clip]:
    """Clips of every region, each species' clips relabelled with its party as group."""
    clips = []
    for region in args.regions.split(","):
        config = make_config(groups=TAXA, species=args.species, clips_per_species=args.clips, seconds=args.seconds,
                             sample_rate=44_100, snr_db=args.snr, overlap=args.overlap, jitter=args.jitter,
                             region=region, seed=seed)
        name = f"{region}_{args.species}x{args.clips}_{args.seconds:g}s_snr{args.snr:g}_ov{args.overlap:g}_seed{seed}"
        for clip in generate_dataset(out / name, config).clips:
            number = int(clip.labels[0].rsplit("/sp", 1)[1])  # labels are <taxon>/spNN
            clips.append(Clip(clip.path, clip.labels, clip.split, f"party{(number - 1) % args.parties + 1}"))
    return clips


def accuracy(logits: torch.Tensor, targets: list[int]) -> float:
    return float((logits.argmax(dim=1) == torch.tensor(targets)).double().mean())


def numpy_lda(x: np.ndarray, y: np.ndarray, classes: int, shrinkage: float) -> tuple[np.ndarray, np.ndarray]:
    """The LDA head fitted on pooled features (reference, independent of chorus)."""
    means = np.stack([x[y == c].mean(axis=0) for c in range(classes)])
    centred = x - means[y]
    cov = centred.T @ centred / (len(x) - classes)
    cov += shrinkage * np.trace(cov) / cov.shape[0] * np.eye(cov.shape[0])
    weight = np.linalg.solve(cov, means.T).T
    priors = np.bincount(y, minlength=classes) / len(y)
    return weight, -0.5 * (weight * means).sum(axis=1) + np.log(priors)


def gaussian_logistic(vectors, labels: list[str], gamma: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A logistic probe fitted on draws from the pooled Gaussian model of the statistics
    (3 draws per clip of each class for training, 1 for choosing the penalty)."""
    pooled = pool_statistics([v.class_stats() for v in vectors])
    total, classes = float(pooled.counts.sum()), len(pooled.labels)
    cov = pooled.scatter / (total - classes)
    cov = cov + gamma * float(torch.trace(cov)) / len(cov) * torch.eye(len(cov), dtype=torch.float64)
    factor = torch.linalg.cholesky(cov)
    gen = torch.Generator().manual_seed(seed)

    def draw(per_clip: int):
        xs, ys = [], []
        for c, label in enumerate(pooled.labels):
            n = per_clip * int(pooled.counts[c])
            xs.append(pooled.means[c] + torch.randn(n, len(cov), generator=gen, dtype=torch.float64) @ factor.T)
            ys += [labels.index(label)] * n
        return torch.cat(xs).float(), torch.tensor(ys)

    (train_x, train_y), (valid_x, valid_y) = draw(3), draw(1)
    weight, bias, _ = probe_head(train_x, train_y, valid_x, valid_y, "multiclass", len(labels))
    return weight, bias


def run_seed(seed: int, args, encoder) -> dict[str, float]:
    out = Path(args.out)
    clips = dataset(out / "data", seed, args)
    settings = ClassifierSettings(layer=args.layer, pooling="mean", task="multiclass", clip_seconds=args.seconds)
    splits = {}
    for split in ("train", "valid", "test"):
        audio = load_eval_audio([c for c in clips if c.split == split], encoder.sample_rate)
        splits[split] = (audio, layer_features(encoder, settings, audio).double())
    parties = sorted({c.group for c in clips})
    fingerprint = base_fingerprint(encoder.state_dict())
    vectors = []
    for party in parties:
        (train, train_x), (valid, valid_x) = splits["train"], splits["valid"]
        rows = [i for i, c in enumerate(train.clips) if c.group == party]
        valid_rows = [i for i, c in enumerate(valid.clips) if c.group == party]
        vector = probe_vector(encoder, settings, party, train.subset(rows), valid.subset(valid_rows),
                              train_x[rows].float(), valid_x[valid_rows].float())
        path = vector.save(out / f"seed{seed}" / party)
        labels = vector.manifest.labels
        targets = [labels.index(train.clips[i].labels[0]) for i in rows]
        write_class_stats(path, ClassStatistics.from_features(train_x[rows], targets, labels, settings.layer,
                                                              settings.pooling, fingerprint))
        vectors.append(TaskVector.load(path))
    heads = compose_heads(vectors, "zscore")
    labels = heads.labels
    truth = {split: [labels.index(c.labels[0]) for c in audio.clips] for split, (audio, _) in splits.items()}
    x = {split: feats.float() for split, (_, feats) in splits.items()}
    row = {"zscore": accuracy(heads.logits(x["test"]), truth["test"])}
    valid_groups = [c.group for c in splits["valid"][0].clips]
    gates = [(accuracy(compose_heads(vectors, "zscore", GroupGate.fit(x["valid"], valid_groups, g)).logits(x["valid"]),
                       truth["valid"]), g) for g in GATES]
    best_gate = max(gates)[1]
    gated = compose_heads(vectors, "zscore", GroupGate.fit(x["valid"], valid_groups, best_gate))
    row["zscore+gate"] = accuracy(gated.logits(x["test"]), truth["test"])
    chosen = None
    for gamma in SHRINKAGES:
        try:
            lda = compose_heads(vectors, "lda", shrinkage=gamma)
        except StatisticsError:  # singular without shrinkage (more features than clips)
            row[f"lda γ={gamma:g}"] = float("nan")
            continue
        order = [lda.labels.index(label) for label in labels]
        row[f"lda γ={gamma:g}"] = accuracy(lda.logits(x["test"])[:, order], truth["test"])
        score = accuracy(lda.logits(x["valid"])[:, order], truth["valid"])
        if chosen is None or score > chosen[0]:
            chosen = (score, gamma, lda, order)
    _, gamma, lda, order = chosen
    row["lda*"], row["γ*"] = row[f"lda γ={gamma:g}"], gamma
    weight, bias = gaussian_logistic(vectors, labels, gamma, seed)
    row["gauss-sample logistic"] = accuracy(x["test"] @ weight.T + bias, truth["test"])
    weight, bias, _ = probe_head(x["train"], torch.tensor(truth["train"]), x["valid"], torch.tensor(truth["valid"]),
                                 "multiclass", len(labels))
    row["pooled probe"] = accuracy(x["test"] @ weight.T + bias, truth["test"])
    ref_w, ref_b = numpy_lda(splits["train"][1].numpy(), np.array(truth["train"]), len(labels), gamma)
    reference = splits["test"][1].numpy() @ ref_w.T + ref_b
    row["pooled lda"] = accuracy(torch.from_numpy(reference), truth["test"])
    composed = lda.logits(x["test"])[:, order].double().numpy()
    row["max |Δlogit| lda vs pooled"] = float(np.abs(composed - reference).max() / np.abs(reference).max())
    row["gap zscore→pooled"] = row["pooled probe"] - row["zscore"]
    row["gap lda*→pooled"] = row["pooled probe"] - row["lda*"]
    row[f"gap lda(γ={DEFAULT_SHRINKAGE:g}, default)→pooled"] = row["pooled probe"] - row[f"lda γ={DEFAULT_SHRINKAGE:g}"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--out", default="/tmp/chorus-composition-heads")
    parser.add_argument("--species", type=int, default=6, help="species per taxon group")
    parser.add_argument("--clips", type=int, default=10, help="clips per species per region")
    parser.add_argument("--regions", default="temperate,wetland,rainforest")
    parser.add_argument("--parties", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--snr", type=float, default=-5.0)
    parser.add_argument("--overlap", type=float, default=0.3)
    parser.add_argument("--jitter", type=float, default=1.5)
    parser.add_argument("--layer", default="block4")
    args = parser.parse_args()
    encoder = load_encoder("sfx-cnn").eval()
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        row = run_seed(seed, args, encoder)
        rows.append(row)
        print(f"seed {seed}: " + ", ".join(f"{k} {v:.4g}" for k, v in row.items()), flush=True)
    print(f"\n{4 * args.species} species in {args.parties} parties, {args.regions}, {args.clips} clips/species/region, "
          f"{args.seconds:g} s, SNR {args.snr:g} dB, overlap {args.overlap:g}; sfx-cnn {args.layer} mean, frozen; "
          f"seeds {args.seeds}; test all-species accuracy, mean ± std")
    for key in rows[0]:
        values = np.array([r[key] for r in rows], dtype=float)
        print(f"{key:30s} {values.mean():.4g} ± {values.std():.2g}")


if __name__ == "__main__":
    main()
