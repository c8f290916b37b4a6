"""The temporal head (fusion.temporal) and its pipeline stage: causality, padding/births, streaming equals
offline, track gaps and ends, CCC against the reference formula. Tiny configs, no video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emomon.pipeline.temporal_stage import TemporalStage
from emomon.pipeline.track_history import TrackHistory, left_padded
from fusion import PersonResult
from fusion.models.labels import ABAW, EMOTIC
from fusion.temporal import TemporalConfig, TemporalModel, create_temporal_model, load_temporal, save_temporal
from fusion.temporal.threads import one_thread
from training.temporal.metrics import ccc, ccc_loss

D, W = 6, 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny matrices run faster (and steadier on a shared machine) on one thread; restored after the module."""
    with one_thread():
        yield


def planted_sequences(n: int, length: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Features whose first channel oscillates at a rate set by the target: only the past reveals it."""
    rng = np.random.default_rng(seed)
    target = rng.uniform(-0.8, 0.8, n)
    t = np.arange(length)
    x = rng.normal(0, 0.1, (n, length, D)).astype(np.float32)
    x[:, :, 0] += np.sin(np.outer(1.2 + target, t) + rng.uniform(0, 6, (n, 1)))
    return torch.from_numpy(x), torch.from_numpy(np.repeat(target[:, None], length, 1).astype(np.float32))


@pytest.fixture(scope="module")
def head() -> TemporalModel:
    """A tiny TCN + Transformer head trained for a second on a planted temporal signal: its outputs depend on
    its inputs and their order (random weights would, too, but less visibly)."""
    torch.manual_seed(0)
    model = create_temporal_model("tcn_transformer", input_dim=D, window=W, hidden=16, heads=2, dropout=0.0)
    x, y = planted_sequences(64, W)
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(40):
        out = model(x)
        loss = ccc_loss(out["vad"][..., :1], y[..., None])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.mark.parametrize("kind", ["per_frame", "tcn", "transformer", "tcn_transformer"])
def test_outputs_at_t_do_not_depend_on_later_frames(kind):
    torch.manual_seed(1)
    model = create_temporal_model(kind, input_dim=D, window=W, hidden=16, heads=2).eval()
    x = torch.randn(2, W, D)
    later = x.clone()
    later[:, 5:] = torch.randn(2, W - 5, D)
    with torch.no_grad():
        a, b = model(x), model(later)
    for key in ("cat_logits", "vad"):
        torch.testing.assert_close(a[key][:, :5], b[key][:, :5], rtol=0, atol=1e-6)
        assert not torch.allclose(a[key][:, 5:], b[key][:, 5:])  # the changed frames themselves do change


def test_a_young_track_in_a_batch_gets_what_it_gets_alone(head):
    """Births: left padding is masked, so a 3-frame track batched with full ones equals the track alone."""
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(n, D)).astype(np.float32) for n in (W, 3, 1, W)]
    windows, valid = left_padded(seqs, W)
    batched = head.step(torch.from_numpy(windows), torch.from_numpy(valid))
    full = head(torch.from_numpy(windows), torch.from_numpy(valid))  # every position; step computes the last only
    torch.testing.assert_close(batched["vad"], full["vad"][:, -1], rtol=0, atol=1e-5)
    for i, seq in enumerate(seqs):
        alone = head.step(torch.from_numpy(seq)[None], torch.ones(1, len(seq), dtype=torch.bool))
        torch.testing.assert_close(batched["vad"][i], alone["vad"][0], rtol=0, atol=1e-5)
        torch.testing.assert_close(batched["probs"][i], alone["probs"][0], rtol=0, atol=1e-5)


def test_the_head_uses_the_past(head):
    """The trained head reads the oscillation rate from the window: reversing the past changes the output."""
    x, y = planted_sequences(32, W, seed=5)
    out = head.step(x, torch.ones(32, W, dtype=torch.bool))["vad"][:, 0].numpy()
    assert ccc(out, y[:, 0].numpy()) > 0.5


def _person(feature, track_id=None, labels=EMOTIC) -> PersonResult:
    return PersonResult(0, np.array([0, 0, 10, 20.0]), np.full(26, 1 / 26), np.full(3, 5.0), track_id=track_id,
                        labels=labels, feature=np.asarray(feature, np.float32))


def test_streaming_equals_offline_through_births_gaps_and_reuse(head):
    """Track 1 from frame 0, track 2 born at frame 4 and missing for frames 9-11 (a short gap), a frame
    reused twice; each output equals the offline prediction over the track's own observed sequence."""
    rng = np.random.default_rng(3)
    stage = TemporalStage(head, max_age=5)
    seen: dict[int, list[np.ndarray]] = {1: [], 2: []}
    streamed: dict[int, list[PersonResult]] = {1: [], 2: []}
    for n in range(20):
        ids, raw = [], {}
        for tid in (1, 2) if n % 2 else (2, 1):  # detection order changes from frame to frame
            if tid == 2 and (n < 4 or 9 <= n <= 11):
                continue
            feat = seen[tid][-1] if n in (6, 7) and seen[tid] else rng.normal(size=D).astype(np.float32)  # reuse
            seen[tid].append(feat)
            raw[len(ids)] = _person(feat, tid)
            ids.append(tid)
        out = stage.apply(n, n / 10, ids, raw)
        for i, tid in enumerate(ids):
            streamed[tid].append(out[i])
        stage.forget_stale(n)
        if n == 11:
            assert 2 in stage.history  # the 3-frame gap is shorter than max_age: the history survived it
    for tid, persons in streamed.items():
        offline = head.predict_sequence(torch.from_numpy(np.stack(seen[tid])))
        np.testing.assert_allclose(np.stack([p.vad for p in persons]), offline["vad"].numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(np.stack([p.probs for p in persons]), offline["probs"].numpy(), rtol=0, atol=1e-5)
        assert all(p.labels is ABAW and p.track_id == tid for p in persons)


def test_history_is_bounded_and_dropped_when_the_track_ends():
    h = TrackHistory(window=4, max_age=3)
    for n in range(10):
        h.add(7, n, n * 0.1, np.full(2, n))
    assert h.features(7).shape == (4, 2) and h.features(7)[:, 0].tolist() == [6, 7, 8, 9]
    h.add(7, 9, 0.9, np.full(2, 99))  # a second entry for the same frame replaces the first
    assert h.features(7)[:, 0].tolist() == [6, 7, 8, 99]
    assert h.forget_stale(12) == [] and 7 in h
    assert h.forget_stale(13) == [7] and 7 not in h and len(h) == 0


def test_untracked_persons_are_one_frame_sequences(head):
    stage = TemporalStage(head)
    f = np.ones(D, np.float32)
    a = stage.apply(0, 0.0, [None], {0: _person(f)})
    b = stage.apply(1, 0.1, [None], {0: _person(f)})
    np.testing.assert_allclose(a[0].vad, b[0].vad)
    assert len(stage.history) == 0


def test_ccc_matches_the_reference_formula_and_the_loss():
    rng = np.random.default_rng(4)
    x = rng.normal(0.2, 0.5, 500)
    y = 0.6 * x + rng.normal(-0.1, 0.3, 500)
    rho = np.corrcoef(x, y)[0, 1]
    reference = 2 * rho * x.std() * y.std() / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)
    assert ccc(x, y) == pytest.approx(reference, abs=1e-10)
    c = x - x.mean()
    assert ccc(x, x) == pytest.approx(1.0) and ccc(c, -c) == pytest.approx(-1.0)
    assert ccc(x, x + 1) < 1  # concordance, not correlation: an offset costs
    y_nan = y.copy()
    y_nan[::7] = np.nan  # unannotated frames are skipped
    ok = np.isfinite(y_nan)
    assert ccc(x, y_nan) == pytest.approx(ccc(x[ok], y[ok]))
    loss = ccc_loss(torch.tensor(np.stack([x, x], 1)), torch.tensor(np.stack([y_nan, y], 1)))
    assert float(loss) == pytest.approx(1 - (ccc(x, y_nan) + ccc(x, y)) / 2, abs=1e-6)


def test_checkpoint_round_trip_and_bad_files(tmp_path, head, trained_model_path):
    from emomon.kernel import InputError

    path = save_temporal(head, tmp_path / "t.pt", {"frame_model": {"name": "x"}})
    back = load_temporal(path)
    x = torch.randn(2, W, D)
    torch.testing.assert_close(back.step(x, torch.ones(2, W, dtype=torch.bool))["vad"],
                               head.step(x, torch.ones(2, W, dtype=torch.bool))["vad"])
    assert back.labels is ABAW and back.metadata["frame_model"] == {"name": "x"}
    with pytest.raises(InputError, match="emotion model checkpoint"):
        load_temporal(trained_model_path)
    (tmp_path / "junk.pt").write_bytes(b"nope")
    with pytest.raises(InputError, match="not a temporal model"):
        load_temporal(tmp_path / "junk.pt")
    with pytest.raises(ValueError, match="kind"):
        TemporalConfig(kind="lstm")
