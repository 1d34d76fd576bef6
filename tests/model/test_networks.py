import numpy as np
import pyro.distributions as dist
import torch

from cvaeq.worlds.dsprites.factors import FACTORS, SIZES
from cvaeq.worlds.dsprites.render import render
from cvaeq.model.cvae import WindowBernoulli
from cvaeq.model.networks import ArchConfig, CVAENet, FullImageNet, WindowNet, onehot, split_logits

WINDOW, CROP = 32, 40  # the window and the trunk's crop of a 64x64 image


def test_onehot_marks_one_value_per_factor():
    classes = torch.tensor([[2, 5, 39, 31, 0], [0, 0, 0, 0, 31]])
    oh = onehot(classes)
    assert oh.shape == (2, 113)
    parts = split_logits(oh)
    for i, f in enumerate(FACTORS):
        assert parts[f].shape == (2, SIZES[f])
        assert torch.equal(parts[f].argmax(1), classes[:, i])
        assert torch.equal(parts[f].sum(1), torch.ones(2))


def test_protocol_shapes_and_ranges(tiny_arch):
    net = CVAENet(tiny_arch)
    s = 3
    classes = torch.tensor([[0, 1, 2, 3, 4], [1, 5, 39, 31, 31], [2, 0, 0, 0, 0]])
    x = (torch.rand(s, 64, 64) < 0.2).float()
    probs = net.decode_probs(classes, torch.randn(s, net.latent_dim))
    assert probs.shape == (s, 64, 64) and bool(((probs > 0) & (probs < 1)).all())
    logits = net.factor_logits(x)
    assert tuple(logits) == FACTORS
    assert all(logits[f].shape == (s, SIZES[f]) for f in FACTORS)
    loc, scale = net.z_posterior(x, classes)
    assert loc.shape == scale.shape == (s, tiny_arch.latent_dim) and bool((scale > 0).all())


def test_full_image_decoder_places_each_cell_block_where_it_belongs(tiny_arch):
    # The decoder's unpatchify must be the inverse of the trunk's patchify:
    # a block emitted for cell (r, c) lands at rows 8r.., columns 8c...
    net = CVAENet(_full_image_arch(tiny_arch))
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.cell[-1].bias.fill_(-10.0)
        net.cell_pos[8 * 2 + 5].fill_(0.0)
        # make cell (2, 5) emit +10 everywhere through the position embedding path
        net.cell[1].weight.zero_()
        net.cell[1].bias.zero_()
        net.cell_pos.zero_()
        net.cell_pos[8 * 2 + 5, 0] = 1.0
        net.cell[1].weight[0, 0] = 50.0
        net.cell[3].weight[:, 0] = 1.0
    img = net.decode_probs(torch.zeros(1, 5, dtype=torch.long), torch.zeros(1, tiny_arch.latent_dim))[0] > 0.5
    rows, cols = img.nonzero(as_tuple=True)
    assert img.sum() == 64
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (16, 23, 40, 47)


def test_arch_config_round_trips_through_a_dict():
    cfg = ArchConfig(latent_dim=3, hidden=17)
    assert ArchConfig.from_dict(cfg.to_dict()) == cfg


def test_configs_from_before_the_centroid_correction_load_without_it():
    old = {k: v for k, v in ArchConfig().to_dict().items() if k != "centroid_correction"}
    cfg = ArchConfig.from_dict(old)
    assert cfg.centroid_correction == 0
    assert CVAENet(cfg).moments(torch.zeros(2, 64, 64)).shape == (2, 74)
    assert CVAENet(ArchConfig()).moments(torch.zeros(2, 64, 64)).shape == (2, 140)


def _full_image_arch(arch):
    return ArchConfig.from_dict({**arch.to_dict(), "window": 0})


def test_window_decoder_draws_its_window_at_the_position_and_background_elsewhere(tiny_arch):
    net = CVAENet(tiny_arch)
    with torch.no_grad():
        for p in net.parameters():
            p.zero_()
        net.cell[-1].bias.fill_(10.0)
        net.background.fill_(-10.0)
    classes = torch.tensor([[2, 3, 7, 3, 20], [0, 0, 0, 31, 0]])
    on = net.decode_probs(classes, torch.zeros(2, tiny_arch.latent_dim)) > 0.5
    for img, (px, py) in zip(on, [(3, 20), (31, 0)]):
        rows, cols = img.nonzero(as_tuple=True)
        assert img.sum() == WINDOW * WINDOW
        assert (rows.min(), rows.max(), cols.min(), cols.max()) == (py, py + 31, px, px + 31)


def test_window_likelihood_is_the_full_images_bernoulli_likelihood(tiny_arch):
    # WindowBernoulli's shortcut (one logit for all pixels outside the window)
    # must score an image exactly as the full 64x64 Bernoulli would, ones
    # outside the window included.
    torch.manual_seed(0)
    net = CVAENet(tiny_arch)
    with torch.no_grad():
        net.background.fill_(-2.0)
    classes = torch.tensor([[0, 1, 2, 0, 31], [1, 5, 39, 17, 4], [2, 0, 0, 31, 0]])
    z = torch.randn(3, tiny_arch.latent_dim)
    x = (torch.rand(3, 64, 64) < 0.3).float()
    got = WindowBernoulli(net, net.decode_blocks(classes, z), classes).log_prob(x)
    want = dist.Bernoulli(logits=net.pixel_logits(classes, z)).log_prob(x).sum((1, 2))
    assert torch.allclose(got, want, rtol=1e-5, atol=1e-3)


def _extreme_sprites():
    """Every shape at the largest scale, every orientation, at the corners and centre."""
    rows = [[sh, 5, o, px, py] for sh in range(3) for o in range(40) for px, py in
            [(0, 0), (31, 31), (0, 31), (31, 0), (15, 16)]]
    return np.array(rows)


def test_every_true_sprite_lies_inside_the_decoders_window(tiny_arch):
    # Pixels outside the window share one background logit, so a true image
    # with a pixel on outside its window could never be drawn well.
    classes = _extreme_sprites()
    x = torch.from_numpy(render(classes)).float()
    net = CVAENet(tiny_arch)
    inside = net.window_of(x, torch.from_numpy(classes)).sum((1, 2))
    assert torch.equal(inside, x.sum((1, 2)))


def test_the_trunks_crop_holds_every_sprite_whole(tiny_arch):
    classes = _extreme_sprites()
    x = torch.from_numpy(render(classes)).float()
    net = CVAENet(tiny_arch)
    corner = net.crop_corner(net.moments(x))
    crop = net.square(x, corner[:, 1], corner[:, 0], CROP)
    assert torch.equal(crop.sum((1, 2)), x.sum((1, 2)))


def test_window_and_crop_of_the_dsprites_networks(tiny_arch):
    net = CVAENet(tiny_arch)
    assert isinstance(net, WindowNet) and net.window_shape == (WINDOW, WINDOW) and net.crop_shape == (CROP, CROP)
    assert net.position_factors == ("posY", "posX") and net.strides == (1, 1)


def test_full_image_networks_still_build_and_load_from_configs_without_the_window(tiny_arch):
    old = {k: v for k, v in tiny_arch.to_dict().items() if k != "window"}
    cfg = ArchConfig.from_dict(old)
    assert cfg.window == 0 and tiny_arch.window == 1
    net = CVAENet(cfg)
    assert isinstance(net, FullImageNet)
    assert not hasattr(net, "background") and net.patch_pos.shape[0] == 256
    classes = torch.tensor([[0, 1, 2, 3, 4]])
    assert net.pixel_logits(classes, torch.zeros(1, cfg.latent_dim)).shape == (1, 64, 64)
    assert net.factor_logits(torch.zeros(1, 64, 64))["posX"].shape == (1, 32)


def test_block_order_round_trips_for_the_window_and_the_image():
    for side in (WINDOW, 64):
        x = torch.rand(2, side, side)
        assert torch.equal(CVAENet.from_blocks(CVAENet.to_blocks(x)), x)
        # the first block is the top-left 8x8 corner
        assert torch.equal(CVAENet.to_blocks(x)[:, :64].view(2, 8, 8), x[:, :8, :8])


def test_window_bernoulli_draws_whole_images_with_nothing_outside_a_confident_window(tiny_arch):
    torch.manual_seed(0)
    net = CVAENet(tiny_arch)
    with torch.no_grad():
        net.background.fill_(-30.0)
        net.cell[-1].bias.fill_(0.0)
    classes = torch.tensor([[0, 0, 0, 5, 9], [2, 5, 3, 31, 31]])
    d = WindowBernoulli(net, net.decode_blocks(classes, torch.zeros(2, tiny_arch.latent_dim)), classes)
    x = d.sample()
    assert x.shape == (2, 64, 64) and d.sample(torch.Size([3])).shape == (3, 2, 64, 64)
    inside = net.window_of(x, classes).sum((1, 2))
    assert torch.equal(inside, x.sum((1, 2))) and bool((inside > 0).all())


def test_q_z_of_one_image_expanded_over_particles_reads_it_once(tiny_arch):
    """A query's evidence is one image expanded over the particles: q(Z | X,
    factors) computes its features once, and gives what it gives each copy."""
    net = CVAENet(tiny_arch)
    img = torch.as_tensor(render(np.array([[2, 3, 10, 16, 20]]))[0], dtype=torch.float32)
    classes = torch.tensor([[0, 1, 2, 3, 4], [1, 5, 39, 31, 31], [2, 3, 10, 16, 20]])
    calls = []
    features = net.features
    net.features = lambda x: calls.append(x.shape[0]) or features(x)
    with torch.no_grad():
        shared = net.z_posterior(img.expand(3, 64, 64), classes)
        assert calls == [1]
        copied = net.z_posterior(img.expand(3, 64, 64).clone(), classes)
        assert calls == [1, 3]
    for a, b in zip(shared, copied):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_one_images_features_are_read_once_by_an_encoding_and_kept_by_nothing(tiny_arch):
    """Through the adapter's Encoding, q(factors | X) then q(Z | X, factors) of
    one evidence image read it once, to the bit what the two calls give alone;
    the network itself keeps nothing: asked again, it reads again, and an array
    changed in place gives other answers."""
    from cvaeq.image_model import ImageModelAdapter

    net = CVAENet(tiny_arch)
    img = torch.as_tensor(render(np.array([[2, 3, 10, 16, 20]])), dtype=torch.float32)
    classes = torch.zeros(4, 5, dtype=torch.long)
    calls = []
    features = net.features
    net.features = lambda x: calls.append(x.shape[0]) or features(x)
    with torch.no_grad():
        enc = ImageModelAdapter(net, (64, 64)).encode(img.expand(4, 64, 64))
        logits, (loc, _) = enc.factor_logits(), enc.z_posterior(classes)
        assert calls == [1]
        assert all(torch.equal(logits[f][:1], v) for f, v in net.factor_logits(img).items())
        assert torch.equal(loc, net.z_posterior(img.expand(4, 64, 64), classes)[0])
        assert calls == [1, 1, 1]
        first = net.factor_logits(img)
        img[0, 0, 0] = 1 - img[0, 0, 0]  # in place
        changed = net.factor_logits(img)
    assert not torch.equal(torch.cat(list(first.values()), 1), torch.cat(list(changed.values()), 1))


def test_answers_follow_the_weights_after_they_change(tiny_arch):
    """Train a step (or load other weights) and ask again about the same image:
    its features are computed afresh with the new weights."""
    net = CVAENet(tiny_arch)
    img = torch.as_tensor(render(np.array([[2, 3, 10, 16, 20]])), dtype=torch.float32)
    with torch.no_grad():
        before = torch.cat(list(net.factor_logits(img).values()), 1)
        for p in net.parameters():
            p.add_(0.01)  # what an optimizer step does: in place
        after = torch.cat(list(net.factor_logits(img).values()), 1)
        fresh = torch.cat(list(net.layout.split(net.factor_logits_flat(net.features(img))).values()), 1)
    assert not torch.equal(before, after) and torch.equal(after, fresh)


def test_answering_decodes_as_the_modules_do_and_runs_their_hooks(tiny_arch):
    """Outside autograd the cell MLP runs as products with their biases added in place
    (networks._cell_answer): the numbers its modules give (on this machine to the bit; to a
    float32 rounding of the last products on any), and with a hook on a module the modules
    themselves are called, so that the hook sees the decoding."""
    net = CVAENet(tiny_arch)
    classes = torch.tensor([[0, 1, 2, 3, 4], [1, 5, 39, 31, 31], [2, 0, 0, 0, 0]] * 7)
    z = torch.randn(len(classes), net.latent_dim)
    with torch.enable_grad():
        modules = net.decode_blocks(classes, z).detach()
    with torch.no_grad():
        answered = net.decode_blocks(classes, z)
        seen = []
        handle = net.cell[-1].register_forward_hook(lambda mod, i, o: seen.append(o.shape))
        hooked = net.decode_blocks(classes, z)
        handle.remove()
    torch.testing.assert_close(answered, modules, rtol=1e-6, atol=1e-6)
    assert torch.equal(hooked, modules) and seen == [(len(classes), net.cell_pos.shape[0], 64)]
