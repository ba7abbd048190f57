"""Pooling rows into a page or document answer, and the abstain rule."""

from __future__ import annotations

import numpy as np
import pytest

from bytehoven_desktop.report import NO_MUSIC, UNCERTAIN, SystemResult, pool, summarize

LABELS = ("bach", "chopin", "mozart")


def rows(*probs: tuple[float, float, float]) -> list[SystemResult]:
    return [SystemResult((0, 0, 1, 1), np.array(p), LABELS) for p in probs]


def test_pool_of_one_row_is_that_row() -> None:
    p = np.array([[0.2, 0.5, 0.3]])
    np.testing.assert_allclose(pool(p), p[0])


def test_pool_sums_to_one_and_keeps_agreement() -> None:
    p = np.array([[0.6, 0.3, 0.1]] * 5)
    np.testing.assert_allclose(pool(p), p[0])
    assert pool(np.random.default_rng(0).dirichlet(np.ones(3), 7)).sum() == pytest.approx(1.0)


def test_one_loud_row_does_not_outvote_the_others() -> None:
    # Three rows disagree. The arithmetic mean follows the one row that is loudly sure of
    # Bach (which the other two all but rule out); pooling picks Chopin, whom no row rules out.
    p = np.array([[0.05, 0.21, 0.74], [0.84, 0.11, 0.05], [0.2, 0.6, 0.2]])
    assert p.mean(0).argmax() == 0
    assert pool(p).argmax() == 1
    logp = np.log(p).mean(0)
    np.testing.assert_allclose(pool(p), np.exp(logp) / np.exp(logp).sum())


def test_sharpness_runs_from_the_mean_to_the_product_and_keeps_the_winner() -> None:
    p = np.random.default_rng(3).dirichlet(np.ones(3), 6)
    np.testing.assert_allclose(pool(p, 0.0), pool(p))
    product = np.prod(p, axis=0)
    np.testing.assert_allclose(pool(p, 1.0), product / product.sum())
    confidences = [pool(p, s).max() for s in (0.0, 0.3, 0.6, 1.0)]
    assert confidences == sorted(confidences) and len(set(confidences)) == 4
    assert {int(pool(p, s).argmax()) for s in (0.0, 0.3, 0.6, 1.0)} == {int(pool(p).argmax())}
    one = p[:1]
    np.testing.assert_allclose(pool(one, 0.7), one[0])  # one row is one row, however sharp
    s = summarize(rows(*[tuple(r) for r in p]), LABELS, threshold=0.0, sharpness=0.5)
    np.testing.assert_allclose([s.composers[c] for c in LABELS], pool(p, 0.5), atol=1e-4)  # rounded


def test_a_zero_does_not_veto() -> None:
    p = np.array([[0.0, 0.9, 0.1], [0.0, 0.9, 0.1], [0.5, 0.0, 0.5]])
    out = pool(p)
    assert np.isfinite(out).all() and out[1] > 0


def test_pool_rejects_nothing() -> None:
    with pytest.raises(ValueError):
        pool(np.zeros((0, 3)))


def test_summary_uses_pooled_probabilities_and_abstains() -> None:
    s = summarize(rows((0.7, 0.2, 0.1), (0.6, 0.3, 0.1)), LABELS, threshold=0.4)
    assert s.composer == "bach" and s.rows == 2 and s.wins == {"bach": 2}
    assert s.confidence == pytest.approx(s.composers["bach"], abs=1e-5)
    assert sum(s.composers.values()) == pytest.approx(1.0, abs=1e-4)
    unsure = summarize(rows((0.4, 0.35, 0.25), (0.3, 0.4, 0.3)), LABELS, threshold=0.5)
    assert unsure.composer is None and unsure.reason == UNCERTAIN and unsure.best_guess is not None
    empty = summarize([], LABELS, threshold=0.4)
    assert empty.composer is None and empty.reason == NO_MUSIC
