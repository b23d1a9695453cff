"""Model tests: shapes, gradients, the paper's equations against hand computation, eval-mode rules,
padding invariance, late-fusion helpers, bf16/channels_last. Everything is tiny (width 8, 16x16
frames, 2-3 steps) so the file runs in seconds on two CPU threads."""
from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from mrpn.models.aggregators import (BiLSTMAggregator, LSTMAggregator, TransformerAggregator,
                                     make_aggregator, reverse_padded)
from mrpn.models.build import KINDS, ModelConfig, build_model, count_parameters
from mrpn.models.fusion import (DenseUnit, FeatureNorm, FusionComponent, FusionNet, ModalityBranch,
                                ResPerceptron, Scoring, UniModalNet, freeze_branches,
                                load_branch_weights)
from mrpn.models.loss import mrpn_loss
from mrpn.models.resnet import ResNet18

AGGS = ("lstm", "bilstm", "transformer")
N_CLASSES = 4


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # these tensors are tiny: with 2 intra-op threads on a shared 2-core machine the thread
    # hand-offs cost 10-40x the arithmetic (measured: 0.5 s vs 5-20 s for the gradient tests)
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


def tiny_cfg(kind: str = "n2", aggregator: str = "lstm", **kw) -> ModelConfig:
    base = dict(kind=kind, aggregator=aggregator, n_classes=N_CLASSES, agg_hidden=16, fusion_hidden=16,
                video_width=8, audio_width=8, dropout=0.1)
    base.update(kw)
    return ModelConfig(**base)


def tiny_batch(B: int = 3, T: int = 2, seed: int = 0, modalities=(("v", 3), ("a", 1))) -> dict:
    g = torch.Generator().manual_seed(seed)
    batch = {}
    for i, (m, c) in enumerate(modalities):
        batch[m] = torch.randn(B, T, c, 16, 16, generator=g)
        # variable lengths within the batch, different per modality
        lens = torch.tensor([T, 1, T, 1, T][:B]) if i % 2 == 0 else torch.tensor([1, T, T, T, 1][:B])
        batch[m + "_len"] = lens
    return batch


def tiny_branch(in_ch: int, agg: str = "lstm", stem: str = "imagenet", **agg_kw) -> ModalityBranch:
    ext = ResNet18(in_ch, width=8, stem=stem)
    return ModalityBranch(ext, make_aggregator(agg, ext.out_dim, 16, **agg_kw))


def assert_all_grads(model: nn.Module) -> None:
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing}"
    bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
    assert not bad, f"non-finite gradients: {bad}"


def bn_eval(x, bn: nn.BatchNorm1d):
    return (x - bn.running_mean) / torch.sqrt(bn.running_var + bn.eps) * bn.weight + bn.bias


def dense(x, lin: nn.Linear):
    return x @ lin.weight.T + lin.bias


@torch.no_grad()
def set_by_hand(module: nn.Module, seed: int = 0) -> None:
    """Fixed, non-trivial weights and running statistics for every DenseUnit / FeatureNorm."""
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, FeatureNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.copy_(torch.randn(m.num_features, generator=g))
            m.bias.copy_(torch.randn(m.num_features, generator=g))
        elif isinstance(m, DenseUnit):
            m.weight.copy_(torch.randn(m.weight.shape, generator=g) * 0.5)
            m.bias.copy_(torch.randn(m.bias.shape, generator=g))


# ------------------------------------------------------------------------ forward / backward / grads

@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("kind", KINDS)
def test_every_parameter_gets_a_gradient(kind, agg):
    torch.manual_seed(0)
    model = build_model(tiny_cfg(kind, agg)).train()
    batch = tiny_batch()
    out = model(batch)
    assert out["scores"].shape == (3, N_CLASSES)
    if kind in ("n1", "n2"):
        assert set(out["side_scores"]) == {"v", "a"}
    else:
        assert "side_scores" not in out
    loss, terms = mrpn_loss(out, torch.tensor([0, 1, 3]))
    assert torch.isfinite(loss)
    loss.backward()
    assert_all_grads(model)
    assert count_parameters(model) == count_parameters(model, trainable_only=True) > 0


def test_output_contract_features():
    model = build_model(tiny_cfg("n2")).train()
    out = model(tiny_batch())
    f = out["features"]
    assert f["v"].shape == (3, 16) and f["a"].shape == (3, 16)
    assert f["fused"].shape == (3, 32)
    uni = build_model(tiny_cfg("am")).eval()
    out = uni(tiny_batch())
    assert set(out) == {"scores", "features"} and set(out["features"]) == {"a"}


# ------------------------------------------------------------------------------------ extractor

@pytest.mark.parametrize("stem,size", [("imagenet", 32), ("small", 16)])
def test_resnet_shapes_and_channels_last(stem, size):
    net = ResNet18(in_channels=1, width=8, stem=stem).eval()
    assert net.out_dim == 64
    x = torch.randn(2, 1, size, size)
    y = net(x)
    assert y.shape == (2, 64)
    # 'small' keeps more resolution: 16 -> 2x2 before pooling, 'imagenet' 32 -> 1x1
    assert net.forward_features(x).shape[-1] == (2 if stem == "small" else 1)
    net_cl = net.to(memory_format=torch.channels_last)
    torch.testing.assert_close(net_cl(x.contiguous(memory_format=torch.channels_last)), y,
                               rtol=1e-4, atol=1e-5)


def test_resnet_zero_init_residual_and_bad_stem():
    net = ResNet18(width=8, zero_init_residual=True)
    assert all((b.bn2.weight == 0).all() for b in net.modules() if hasattr(b, "bn2"))
    with pytest.raises(ValueError):
        ResNet18(stem="tiny")


# ----------------------------------------------------------------------------------- aggregators

def _lengths():
    return torch.tensor([3, 1, 2])


def test_reverse_padded_is_an_involution():
    x = torch.arange(3 * 4).float().view(3, 4, 1)
    L = torch.tensor([4, 2, 1])
    r = reverse_padded(x, L)
    assert r[1, :, 0].tolist() == [5.0, 4.0, 6.0, 7.0]
    torch.testing.assert_close(reverse_padded(r, L), x)


@torch.no_grad()
def test_lstm_gather_equals_packing():
    torch.manual_seed(0)
    agg = LSTMAggregator(5, 7, num_layers=2).eval()
    x, L = torch.randn(3, 3, 5), _lengths()
    packed = pack_padded_sequence(x, L, batch_first=True, enforce_sorted=False)
    _, (h_n, _) = agg.lstm(packed)
    torch.testing.assert_close(agg(x, L), h_n[-1])


@torch.no_grad()
def test_bilstm_equals_packed_bidirectional_lstm():
    torch.manual_seed(0)
    agg = BiLSTMAggregator(5, 7, num_layers=2).eval()
    ref = nn.LSTM(5, 7, num_layers=2, bidirectional=True, batch_first=True)
    for k in range(2):
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(ref, f"{name}_l{k}").copy_(getattr(agg.fwd[k], f"{name}_l0"))
            getattr(ref, f"{name}_l{k}_reverse").copy_(getattr(agg.bwd[k], f"{name}_l0"))
    x, L = torch.randn(3, 3, 5), _lengths()
    _, (h_n, _) = ref(pack_padded_sequence(x, L, batch_first=True, enforce_sorted=False))
    torch.testing.assert_close(agg(x, L), torch.cat([h_n[-2], h_n[-1]], 1))
    assert agg.out_dim == 14


@pytest.mark.parametrize("name,pos", [("lstm", None), ("bilstm", None), ("transformer", "learned"),
                                      ("transformer", "sinusoidal")])
@torch.no_grad()
def test_aggregator_padding_invariance(name, pos):
    torch.manual_seed(0)
    kw = dict(pos=pos, heads=2) if name == "transformer" else {}
    agg = make_aggregator(name, 5, 8, num_layers=2, **kw).eval()
    x, L = torch.randn(3, 4, 5), torch.tensor([4, 1, 2])
    garbage = x.clone()
    for b, n in enumerate(L.tolist()):
        garbage[b, n:] = torch.randn_like(garbage[b, n:]) * 100
    y = agg(x, L)
    torch.testing.assert_close(agg(garbage, L), y, rtol=1e-5, atol=1e-5)
    for b, n in enumerate(L.tolist()):  # each sequence alone, unpadded
        torch.testing.assert_close(agg(x[b:b + 1, :n], L[b:b + 1]), y[b:b + 1], rtol=1e-5, atol=1e-5)


def test_transformer_average_over_valid_positions():
    torch.manual_seed(0)
    agg = TransformerAggregator(4, 8, heads=2, dropout=0.0).eval()
    x, L = torch.randn(2, 3, 4), torch.tensor([3, 2])
    enc = agg.encode(x, torch.tensor([[True, True, True], [True, True, False]]))
    want = torch.stack([enc[0, :3].mean(0), enc[1, :2].mean(0)])
    torch.testing.assert_close(agg(x, L), want, rtol=1e-5, atol=1e-5)


@torch.no_grad()
def test_encoder_block_equals_torch_transformer_layer():
    torch.manual_seed(0)
    agg = TransformerAggregator(4, 8, heads=2, dropout=0.0).eval()
    blk = agg.blocks[0]
    ref = nn.TransformerEncoderLayer(8, 2, dim_feedforward=32, dropout=0.0, activation="gelu",
                                     batch_first=True, norm_first=True).eval()
    ref.self_attn.in_proj_weight.copy_(blk.qkv.weight)
    ref.self_attn.in_proj_bias.copy_(blk.qkv.bias)
    ref.self_attn.out_proj.load_state_dict(blk.proj.state_dict())
    ref.linear1.load_state_dict(blk.mlp[0].state_dict())
    ref.linear2.load_state_dict(blk.mlp[2].state_dict())
    ref.norm1.load_state_dict(blk.ln1.state_dict())
    ref.norm2.load_state_dict(blk.ln2.state_dict())
    h = torch.randn(2, 3, 8)
    valid = torch.tensor([[True, True, True], [True, False, False]])
    want = ref(h, src_key_padding_mask=~valid)
    torch.testing.assert_close(blk(h, valid[:, None, None, :]), want, rtol=1e-5, atol=1e-5)


def test_make_aggregator_rejects_unknown():
    with pytest.raises(ValueError):
        make_aggregator("gru", 4, 4)


# ------------------------------------------------------------------- equations vs hand computation

@torch.no_grad()
def test_res_perceptron_eq6():
    rp = ResPerceptron(6)
    set_by_hand(rp, 1)
    rp.eval()
    f_hat = torch.randn(4, 6)
    want = f_hat + bn_eval(torch.sigmoid(dense(f_hat, rp.dense)), rp.norm)
    torch.testing.assert_close(rp(f_hat), want)


@torch.no_grad()
def test_scoring_eq2():
    sc = Scoring(6, 5, 3, dropout=0.5)
    set_by_hand(sc, 2)
    sc.eval()  # dropout off (section 4.1 note 4)
    x = torch.randn(4, 6)
    want = dense(bn_eval(torch.relu(dense(x, sc.dense1)), sc.norm), sc.dense2)
    torch.testing.assert_close(sc(x), want)


@pytest.mark.parametrize("input_norm", [True, False])
@torch.no_grad()
def test_fusion_component_eq3_eq4(input_norm):
    fc = FusionComponent([3, 4], hidden=5, n_out=2, dropout=0.5, input_norm=input_norm)
    set_by_hand(fc, 3)
    fc.eval()
    gv, ga = torch.randn(4, 3), torch.randn(4, 4)
    z = torch.cat([gv, ga], 1)
    if input_norm:  # eq. (3): FeatureNorm(Concatenate(g_v, g_a))
        z = bn_eval(z, fc.norm)
    else:
        assert isinstance(fc.norm, nn.Identity)
    sc = fc.scoring
    want = dense(bn_eval(torch.relu(dense(z, sc.dense1)), sc.norm), sc.dense2)
    torch.testing.assert_close(fc([gv, ga]), want)


@pytest.mark.parametrize("variant", ["n0", "n1", "n2"])
@torch.no_grad()
def test_fusion_net_central_branch_eqs_7_8_9(variant):
    torch.manual_seed(0)
    net = build_model(tiny_cfg(variant))
    set_by_hand(net, 4)  # every DenseUnit / FeatureNorm outside the ResNets: norms, RP, fusion, side
    net.eval()
    batch = tiny_batch()
    out = net(batch)
    f = {m: net.branches[m](batch[m], batch[m + "_len"]) for m in ("v", "a")}  # eq. (1)
    f_hat = {m: bn_eval(f[m], net.norms[m]) for m in f}  # FeatureNorm
    if variant == "n2":  # eq. (9): g_m = ResPerceptron(f_hat_m), eq. (6)
        g = [f_hat[m] + bn_eval(torch.sigmoid(dense(f_hat[m], net.res[m].dense)), net.res[m].norm) for m in f]
    else:  # eqs. (7), (8): g_m = f_hat_m
        g = [f_hat["v"], f_hat["a"]]
    z = bn_eval(torch.cat(g, 1), net.fusion.norm)
    sc = net.fusion.scoring
    s_va = dense(bn_eval(torch.relu(dense(z, sc.dense1)), sc.norm), sc.dense2)
    torch.testing.assert_close(out["scores"], s_va)
    torch.testing.assert_close(out["features"]["v"], f_hat["v"])
    torch.testing.assert_close(out["features"]["fused"], torch.cat(g, 1))
    if variant != "n0":  # side head s_m = DenseUnit(f_hat_m), eqs. (8), (9)
        for m in ("v", "a"):
            torch.testing.assert_close(net.forward_modality(batch, m), dense(f_hat[m], net.side[m]))


@torch.no_grad()
def test_unimodal_net_matches_hand_computation():
    net = build_model(tiny_cfg("vm"))
    set_by_hand(net, 5)
    net.eval()
    batch = tiny_batch()
    f_hat = bn_eval(net.branches["v"](batch["v"], batch["v_len"]), net.norms["v"])
    sc = net.scoring
    want = dense(bn_eval(torch.relu(dense(f_hat, sc.dense1)), sc.norm), sc.dense2)
    torch.testing.assert_close(net(batch)["scores"], want)
    torch.testing.assert_close(net.forward_modality(batch, "v"), want)


# --------------------------------------------------------------------------- eval-mode behaviour

@pytest.mark.parametrize("variant", ["n1", "n2"])
def test_side_branches_run_only_in_training(variant):
    net = build_model(tiny_cfg(variant))
    calls = []
    for m, head in net.side.items():
        head.register_forward_hook(lambda mod, inp, out, m=m: calls.append(m))
    batch = tiny_batch()
    net.eval()
    with torch.no_grad():
        out = net(batch)
    assert calls == [] and "side_scores" not in out  # section 4.1 note 2
    net.train()
    out = net(batch)
    assert sorted(calls) == ["a", "v"] and set(out["side_scores"]) == {"v", "a"}
    calls.clear()
    net.eval()
    with torch.no_grad():
        s_a = net.forward_modality(batch, "a")
    assert calls == ["a"] and s_a.shape == (3, N_CLASSES)


def test_forward_modality_reads_only_that_modality():
    net = build_model(tiny_cfg("n2")).eval()
    batch = tiny_batch()
    only_v = {"v": batch["v"], "v_len": batch["v_len"]}
    with torch.no_grad():
        assert net.forward_modality(only_v, "v").shape == (3, N_CLASSES)
    with pytest.raises(RuntimeError):
        build_model(tiny_cfg("n0")).forward_modality(batch, "v")


@torch.no_grad()
def test_n0_and_n1_are_the_same_network_in_eval_mode():
    torch.manual_seed(0)
    n0, n1 = build_model(tiny_cfg("n0")), build_model(tiny_cfg("n1"))
    k0, k1 = set(n0.state_dict()), set(n1.state_dict())
    assert k0 <= k1 and all(k.startswith("side.") for k in k1 - k0) and k1 - k0
    missing, unexpected = n1.load_state_dict(n0.state_dict(), strict=False)
    assert all(k.startswith("side.") for k in missing) and not unexpected
    n0.eval(), n1.eval()
    batch = tiny_batch()
    torch.testing.assert_close(n0(batch)["scores"], n1(batch)["scores"])


@pytest.mark.parametrize("skip_padded", [True, False])
@pytest.mark.parametrize("agg", AGGS)
@torch.no_grad()
def test_model_padding_invariance_eval(agg, skip_padded):
    torch.manual_seed(0)
    net = build_model(tiny_cfg("n2", agg, agg_heads=2))
    for b in net.branches.values():
        b.skip_padded = skip_padded
    net.eval()
    batch = tiny_batch(T=3)
    garbage = dict(batch)
    for m in ("v", "a"):
        x = batch[m].clone()
        for b, n in enumerate(batch[m + "_len"].tolist()):
            x[b, n:] = torch.randn_like(x[b, n:]) * 50
        garbage[m] = x
    torch.testing.assert_close(net(garbage)["scores"], net(batch)["scores"], rtol=1e-4, atol=1e-4)


def test_skip_padded_keeps_padding_out_of_batchnorm_in_training():
    torch.manual_seed(0)
    branch = tiny_branch(3, "lstm").train()
    x, L = torch.randn(3, 3, 3, 16, 16), torch.tensor([3, 1, 2])
    g = x.clone()
    g[1, 1:] = 100.0
    g[2, 2:] = -100.0
    torch.testing.assert_close(branch(g, L), branch(x, L))


# ------------------------------------------------------------------------------------ late fusion

def test_freeze_branches_keeps_weights_and_bn_stats():
    torch.manual_seed(0)
    net = build_model(tiny_cfg("n2"))
    freeze_branches(net, ["v"])
    net.train()
    assert net.training and not net.branches["v"].training and net.branches["a"].training
    assert not any(p.requires_grad for p in net.branches["v"].parameters())
    before_v = {k: v.clone() for k, v in net.branches["v"].state_dict().items()}
    before_a = {k: v.clone() for k, v in net.branches["a"].state_dict().items()}
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2, weight_decay=0.1)
    loss, _ = mrpn_loss(net(tiny_batch()), torch.tensor([0, 1, 2]))
    loss.backward()
    opt.step()
    for k, v in net.branches["v"].state_dict().items():
        assert torch.equal(v, before_v[k]), k  # weights and BN running stats both untouched
    changed = [k for k, v in net.branches["a"].state_dict().items() if not torch.equal(v, before_a[k])]
    assert any("running_mean" in k for k in changed) and any("weight" in k for k in changed)
    assert count_parameters(net, trainable_only=True) < count_parameters(net)
    net.train()  # a later train() call must not wake the frozen branch up
    assert not net.branches["v"].training


def test_load_branch_weights_from_unimodal_models():
    torch.manual_seed(0)
    vm, am = build_model(tiny_cfg("vm")), build_model(tiny_cfg("am"))
    net = build_model(tiny_cfg("n0"))
    loaded = load_branch_weights(net, vm, "v")
    assert any(k.startswith("branches.v.extractor.") for k in loaded)
    assert any(k.startswith("branches.v.aggregator.") for k in loaded)
    assert any(k.startswith("norms.v.") for k in loaded)
    # a DDP / torch.compile style checkpoint loads too
    load_branch_weights(net, {"module." + k: v for k, v in am.state_dict().items()}, "a")
    for m, src in (("v", vm), ("a", am)):
        for k, v in src.branches[m].state_dict().items():
            assert torch.equal(net.branches[m].state_dict()[k], v), k
    net.eval(), vm.eval()
    batch = tiny_batch()
    with torch.no_grad():
        torch.testing.assert_close(net(batch)["features"]["v"], vm(batch)["features"]["v"])
    with pytest.raises(KeyError):
        load_branch_weights(net, vm, "a")


# ------------------------------------------------------------------------- generality / precision

def test_three_modality_regression_fusion_net():
    torch.manual_seed(0)
    branches = {"v": tiny_branch(3, "lstm", stem="small"), "a": tiny_branch(1, "transformer", heads=2),
                "depth": tiny_branch(2, "bilstm")}
    net = FusionNet(branches, n_out=2, variant="n2", hidden=16, dropout=0.1, task="regression").train()
    batch = tiny_batch(modalities=(("v", 3), ("a", 1), ("depth", 2)))
    out = net(batch)
    assert out["scores"].shape == (3, 2) and set(out["side_scores"]) == {"v", "a", "depth"}
    assert out["features"]["fused"].shape == (3, 16 + 16 + 32)
    loss, terms = mrpn_loss(out, torch.randn(3, 2), task=net.task)
    assert set(terms) == {"central", "v", "a", "depth", "total"}
    loss.backward()
    assert_all_grads(net)


def test_single_modality_fusion_net():
    net = FusionNet({"a": tiny_branch(1)}, n_out=3, variant="n1", hidden=8).train()
    batch = tiny_batch(modalities=(("a", 1),))
    loss, terms = mrpn_loss(net(batch), torch.tensor([0, 1, 2]))
    loss.backward()
    assert_all_grads(net)


def test_multi_term_loss_eq5():
    g = torch.Generator().manual_seed(0)
    out = {"scores": torch.randn(4, 3, generator=g),
           "side_scores": {"v": torch.randn(4, 3, generator=g), "a": torch.randn(4, 3, generator=g)}}
    y = torch.tensor([0, 2, 1, 1])

    def ce(s):  # CrossEntropy(p, Softmax(s)) with one-hot p, eq. (5)
        return -(torch.log_softmax(s, 1)[torch.arange(4), y]).mean()

    loss, terms = mrpn_loss(out, y)
    torch.testing.assert_close(terms["central"], ce(out["scores"]))
    torch.testing.assert_close(terms["v"], ce(out["side_scores"]["v"]))
    torch.testing.assert_close(loss, ce(out["scores"]) + ce(out["side_scores"]["v"]) + ce(out["side_scores"]["a"]))
    loss0, terms0 = mrpn_loss({"scores": out["scores"]}, y)  # N0 / VM / AM: one term
    assert set(terms0) == {"central", "total"}
    r, _ = mrpn_loss({"scores": torch.ones(2, 1)}, torch.tensor([0.0, 2.0]), task="regression")
    torch.testing.assert_close(r, torch.tensor(1.0))


@pytest.mark.parametrize("agg", AGGS)
def test_bf16_autocast_channels_last(agg):
    torch.manual_seed(0)
    net = build_model(tiny_cfg("n2", agg, agg_heads=2)).to(memory_format=torch.channels_last)
    batch = tiny_batch()
    net.train()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = net(batch)
        loss, _ = mrpn_loss(out, torch.tensor([0, 1, 2]))
    loss.backward()
    assert torch.isfinite(loss)
    net.eval()
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        s = net(batch)["scores"]
    assert s.shape == (3, N_CLASSES) and torch.isfinite(s.float()).all()


def test_build_model_rejects_bad_config():
    with pytest.raises(ValueError):
        build_model(tiny_cfg("n3"))
    with pytest.raises(ValueError):
        build_model(tiny_cfg("n2", task="ranking"))
    with pytest.raises(ValueError):
        FusionNet({"fused": tiny_branch(1)}, 2)
    assert isinstance(build_model(tiny_cfg("vm")), UniModalNet)


@pytest.mark.parametrize("agg", AGGS)
@pytest.mark.parametrize("skip_padded", [True, False])
def test_onnx_export_with_dynamic_batch_and_length(agg, skip_padded, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    net = build_model(tiny_cfg("n2", agg, agg_heads=2)).eval()
    for b in net.branches.values():
        b.skip_padded = skip_padded

    class Scores(nn.Module):  # ONNX takes positional tensors, the model a dict
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, v, v_len, a, a_len):
            return self.net({"v": v, "v_len": v_len, "a": a, "a_len": a_len})["scores"]

    wrapped = Scores(net).eval()
    names = ["v", "v_len", "a", "a_len"]
    b = tiny_batch(B=2, T=3)
    path = tmp_path / "m.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, tuple(b[k] for k in names), str(path), dynamo=False, input_names=names,
                          output_names=["scores"], opset_version=17,
                          dynamic_axes={"v": {0: "B", 1: "Tv"}, "v_len": {0: "B"},
                                        "a": {0: "B", 1: "Ta"}, "a_len": {0: "B"}})
    wrapped.eval()  # export restores the wrapper's mode; make sure the reference runs in eval
    sess = ort.InferenceSession(str(path))
    other = tiny_batch(B=4, T=5, seed=1)  # another batch size and sequence length
    other["a"], other["a_len"] = other["a"][:, :2], other["a_len"].clamp(max=2)
    got = sess.run(None, {k: other[k].numpy() for k in names})[0]
    with torch.no_grad():
        want = wrapped(*(other[k] for k in names))
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("face", [48, 96, 64])
def test_facecnn_branch_exports_to_onnx_with_the_adaptive_pools_values(face, tmp_path, monkeypatch):
    """The shipped model's F_v (FaceCNN) under the exporter's dynamic batch and length, for a 3 x 3 map
    (48 px faces, the pool is the identity), a 6 x 6 one (equal windows) and a 4 x 4 one (unequal)."""
    from mrpn.models.facecnn import FaceCNN

    ext = FaceCNN(1, 8)
    side = face // 16  # the map FaceCNN pools
    m = torch.randn(2, 8, side, side)
    with monkeypatch.context() as mp:  # the windows the exported graph uses, against the adaptive pool
        mp.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
        torch.testing.assert_close(ext._pool3(m), ext.pool(m), rtol=0, atol=1e-6)
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = build_model(tiny_cfg("vm", video_extractor="facecnn", video_in_channels=1)).eval()

    class Scores(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, v, v_len):
            return self.net({"v": v, "v_len": v_len})["scores"]

    wrapped = Scores(net).eval()
    g = torch.Generator().manual_seed(0)
    v, v_len = torch.randn(2, 3, 1, face, face, generator=g), torch.tensor([3, 2])
    path = tmp_path / "vm.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapped, (v, v_len), str(path), dynamo=False, input_names=["v", "v_len"],
                          output_names=["scores"], opset_version=17,
                          dynamic_axes={"v": {0: "B", 1: "T"}, "v_len": {0: "B"}})
    v2, len2 = torch.randn(4, 5, 1, face, face, generator=g), torch.tensor([5, 1, 3, 5])
    got = ort.InferenceSession(str(path)).run(None, {"v": v2.numpy(), "v_len": len2.numpy()})[0]
    with torch.no_grad():
        want = wrapped(v2, len2)
    torch.testing.assert_close(torch.from_numpy(got), want, rtol=1e-4, atol=1e-4)
