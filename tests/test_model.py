import pytest
import torch

from ciss_vae.classes.vae import CISSVAE, ClusterLinear
from ciss_vae.losses import ColumnKinds, loss_function, reconstruction_terms


def per_row(model, x, c):
    """Row-by-row reference forward pass (no batching tricks)."""
    def lin(layer, h, k):
        return h @ layer.weight[k] + layer.bias[k] if isinstance(layer, ClusterLinear) else layer(h)
    out = []
    for i in range(len(x)):
        k, h = int(c[i]), x[i:i + 1]
        for layer in model.encoder:
            h = torch.relu(lin(layer, h, k))
        h = lin(model.latent, h, k)[:, :model.latent_dim]
        for layer in model.decoder:
            h = torch.relu(lin(layer, h, k))
        out.append(lin(model.output, h, k))
    return torch.cat(out)


@pytest.mark.parametrize("k, sizes", [(1, None), (3, None), (40, None), (6, [200, 1, 0, 3, 1, 1])])
def test_batched_unshared_layers_equal_the_per_row_computation(k, sizes):
    torch.manual_seed(0)
    model = CISSVAE(7, [12, 5], ["u", "S"], ["Shared", "unshared"], False, 3, False, k)
    c = torch.randint(0, k, (150,)) if sizes is None else torch.repeat_interleave(torch.arange(k), torch.tensor(sizes))
    c = c[torch.randperm(len(c))]
    x = torch.randn(len(c), 7)
    logits, mu, logvar = model(x, c, deterministic=True)
    assert torch.allclose(logits, per_row(model, x, c), atol=1e-5)
    assert mu.shape == logvar.shape == (len(c), 3)


def test_gradients_reach_only_the_replicas_of_clusters_in_the_batch():
    model = CISSVAE(4, [6], ["u"], ["u"], False, 2, False, 5)
    x, c = torch.randn(20, 4), torch.tensor([1, 3] * 10)
    logits, _, _ = model(x, c, deterministic=True)
    logits.sum().backward()
    grad = model.encoder[0].weight.grad.abs().sum(dim=(1, 2))
    assert (grad[[1, 3]] > 0).all() and (grad[[0, 2, 4]] == 0).all()


@pytest.mark.parametrize("enc, dec, message", [
    (["u", "s"], ["s"], "layer_order_dec.*1 entries"),
    (["u"], ["s", "s"], "layer_order_enc"),
    (["u", "x"], ["s", "s"], "'x'"),
    ("shared", ["s", "s"], "list"),
])
def test_bad_layer_orders_raise(enc, dec, message):
    with pytest.raises((ValueError, TypeError), match=message):
        CISSVAE(4, [6, 3], enc, dec, True, 2, True, 2)


def test_layer_words_any_case_in_both_orders():
    model = CISSVAE(4, [6, 3], ["U", "Shared"], ["s", "UNSHARED"], True, 2, True, 2)
    assert model.layer_order_enc == ["unshared", "shared"] and model.layer_order_dec == ["shared", "unshared"]
    assert isinstance(model.decoder[1], ClusterLinear) and isinstance(model.encoder[1], torch.nn.Linear)


def test_thousand_clusters_run_and_keep_stacked_weights():
    model = CISSVAE(10, [16], ["u"], ["u"], False, 2, False, 1000)
    assert model.encoder[0].weight.shape == (1000, 10, 16)
    c = torch.randint(0, 1000, (3000,))
    logits, _, _ = model(torch.randn(3000, 10), c)
    assert logits.shape == (3000, 10) and torch.isfinite(logits).all()


def test_masked_binary_cells_add_nothing_to_the_loss():
    kinds = ColumnKinds(torch.tensor([0]), torch.tensor([1]), [torch.tensor([2, 3])], 4)
    logits = torch.tensor([[0.5, 3.0, 2.0, -1.0], [1.0, -2.0, 0.0, 0.0]])
    target = torch.tensor([[1.0, 1.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
    weight = torch.tensor([[1.0, 0.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    mse, bce, ce = reconstruction_terms(logits, target, weight, kinds)
    assert mse.item() == pytest.approx(0.25)
    assert bce.item() == pytest.approx(torch.nn.functional.softplus(torch.tensor(-2.0)).item())
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(logits[:1, 2:], torch.tensor([0])).item())
    mu, logvar = torch.zeros(2, 2), torch.zeros(2, 2)
    total = loss_function(None, weight.bool(), logits, target, {"continuous": [0], "binary": [1], "c": [2, 3]},
                          mu, logvar, beta=1.0)
    assert total.item() == pytest.approx((mse + bce + ce).item())


def test_state_dict_round_trip_rebuilds_the_same_function():
    kw = dict(input_dim=5, hidden_dims=[8, 4], layer_order_enc=["u", "u"], layer_order_dec=["s", "s"],
              latent_shared=False, num_clusters=3, latent_dim=2, output_shared=False)
    a, b = CISSVAE(**kw), CISSVAE(**kw)
    b.load_state_dict(a.state_dict())
    x, c = torch.randn(9, 5), torch.tensor([0, 1, 2] * 3)
    assert torch.equal(a(x, c, deterministic=True)[0], b(x, c, deterministic=True)[0])
    assert CISSVAE(**a.constructor_kwargs()).encoder[0].weight.shape == a.encoder[0].weight.shape
