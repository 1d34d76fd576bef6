import torch

from cvaeq.data.dsprites import FACTORS, SIZES
from cvaeq.model.networks import ONEHOT_DIM, ArchConfig, CVAENet, onehot, split_logits


def test_onehot_marks_one_value_per_factor():
    classes = torch.tensor([[2, 5, 39, 31, 0], [0, 0, 0, 0, 31]])
    oh = onehot(classes)
    assert oh.shape == (2, ONEHOT_DIM) and ONEHOT_DIM == 113
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


def test_decoder_places_each_cell_block_where_it_belongs(tiny_arch):
    # The decoder's unpatchify must be the inverse of the trunk's patchify:
    # a block emitted for cell (r, c) lands at rows 8r.., columns 8c...
    net = CVAENet(tiny_arch)
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
