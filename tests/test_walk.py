"""The one walk of the SCM (cvaeq.walk): its policies agree, it alone applies do(),
and a mechanism's abduction carries its own weight, whatever the order of calls."""

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings

from cvaeq.engine import abduct, infer, intervene, predict
from cvaeq.engine.prediction import predict_changes
from cvaeq.mechanisms import BernoulliImage, GaussianLatent, GumbelMax, abduction
from cvaeq.mechanisms.checked import CheckedMechanism
from cvaeq.scm import SCM, build_scm
from cvaeq.story import load_story
from cvaeq.testing.scms import random_scm, scm_specs
from cvaeq.walk import Forward, Replay, Site, Weigh, around, walk

ROOT = Path(__file__).resolve().parent.parent / "cvaeq"
HEART = {"shape": 2, "scale": 1, "orientation": 5, "posX": 25, "posY": 10}


@pytest.fixture(scope="module")
def scm():
    return build_scm(load_story())


@pytest.mark.parametrize("do", [{}, {"shape": 0}, {"scale": 5, "posX": 3}, {"Z": torch.ones(6)}])
def test_forward_sample_under_do_is_abduction_on_no_evidence_then_prediction(scm, do):
    """The SCM's Pyro model, abduction and prediction are one walk: under the same
    seed, sampling the intervened model draws the very world that abducting
    nothing and predicting gives."""
    world = intervene(scm, do)
    sampled = world.sample(300, seed=4)
    torch.manual_seed(4)
    p = abduct(world, {}, 300)
    predicted = predict(world, p)
    for v in scm.nodes:
        assert torch.equal(sampled[v], predicted[v]), v
        assert torch.equal(sampled[v], p.values[v]), v


def test_only_the_walk_reads_an_intervention(scm):
    """No module running an SCM applies do() itself, nor through Pyro's handler."""
    runners = [ROOT / "scm.py", ROOT / "story.py", ROOT / "evaluation" / "run.py", *(ROOT / "engine").glob("*.py")]
    for path in runners:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute):
                assert node.value.attr != "interventions", f"{path.name}:{node.lineno} reads an intervention's value"
            if isinstance(node, ast.Attribute) and node.attr == "do":
                assert getattr(node.value, "id", None) != "poutine", f"{path.name}:{node.lineno} uses poutine.do"
    walk_src = (ROOT / "walk.py").read_text()
    assert "scm.interventions[v]" in walk_src


@settings(max_examples=15, deadline=None, derandomize=True, database=None)
@given(scm_specs())
def test_predicting_only_the_changes_equals_predicting_everything(spec):
    from cvaeq.mechanisms import gumbel_max

    scm, _ = random_scm(gumbel_max, spec)
    torch.manual_seed(spec.seed)
    world = scm.sample(64)
    p = abduct(scm, {scm.nodes[-1]: world[scm.nodes[-1]]}, 64, resample_below=0)
    for v in scm.nodes:
        do = intervene(scm, {v: 0})
        full, changed = predict(do, p), predict_changes(do, p)
        assert all(torch.equal(full[u], changed[u]) for u in scm.nodes)


def test_a_policy_sees_parents_in_the_mechanisms_order_and_do_is_not_its_business(scm):
    seen = []

    class Spy(Forward):
        def visit(self, site: Site) -> None:
            seen.append((site.node, tuple(site.parents)))
            super().visit(site)

        def intervened(self, site: Site) -> None:
            seen.append((site.node, "do", site.value.tolist()))
            super().intervened(site)

    torch.manual_seed(0)
    walked = walk(intervene(scm, {"shape": 1}), Spy(scm), 3)
    assert [s[0] for s in seen] == list(scm.nodes)
    assert ("shape", "do", [1, 1, 1]) in seen
    assert ("scale", ("shape",)) in seen
    assert walked.values["shape"].tolist() == [1, 1, 1] and walked.log_weight is None


def test_weigh_sums_the_terms_in_the_nodes_order():
    m = GumbelMax(parents=("a",), probs=torch.tensor([[0.25, 0.75], [0.5, 0.5]]))
    values = {"a": torch.tensor([0, 1]), "b": torch.tensor([1, 1])}
    terms = {"a": torch.tensor([-1.0, -2.0], dtype=torch.float64)}
    got = walk(around("b", m), Weigh(values, terms, likelihood=("b",)), 2).log_weight
    assert torch.equal(got, terms["a"] + m.log_prob(values["b"], {"a": values["a"]}))


# ---------------------------------------------------------------- the abduction contract


def _cases():
    g = torch.Generator().manual_seed(1)
    w = torch.randn(2, 64, generator=g) * 3  # a fixed linear decoder of pixel logits, 8x8 images
    image = BernoulliImage(("Z",), None, logits=lambda ps: (ps["Z"] @ w).view(-1, 8, 8), factors=(), shape=(8, 8))

    def image_case(seed):
        z = torch.randn(5, 2, generator=g)
        return image, (torch.rand(5, 8, 8, generator=g) < 0.5).float(), {"Z": z}

    gumbel = GumbelMax(parents=("a",), probs=torch.tensor([[0.2, 0.3, 0.5], [0.6, 0.3, 0.1]]))

    def gumbel_case(seed):
        return gumbel, torch.randint(3, (5,), generator=g), {"a": torch.randint(2, (5,), generator=g)}

    latent = GaussianLatent(dim=3)

    def latent_case(seed):
        return latent, torch.randn(5, 3, generator=g), {}

    return {"image": image_case, "gumbel": gumbel_case, "latent": latent_case}


@pytest.mark.parametrize("kind", ["image", "gumbel", "latent"])
def test_abduction_weighs_as_log_prob_whatever_the_order_of_calls(kind):
    """abduct() returns the noise and log p(value | parents) together; two
    abductions on different evidence, then the log-probabilities in either
    order, agree (no mechanism keeps what one call computed for the next)."""
    make = _cases()[kind]
    m, x1, p1 = make(1)
    _, x2, p2 = make(2)
    a1, a2 = m.abduct(x1, p1), m.abduct(x2, p2)
    assert torch.equal(m.assign(p1, a1.noise), x1.to(m.assign(p1, a1.noise).dtype))
    for first, second in (((x1, p1, a1), (x2, p2, a2)), ((x2, p2, a2), (x1, p1, a1))):
        for x, p, a in (first, second):
            assert torch.equal(m.log_prob(x, p).double(), a.log_weight.double())


def test_an_image_parent_changed_in_place_is_decoded_afresh():
    """The image mechanism keeps nothing between calls: parents edited in place
    after an abduction give the likelihood of their new values."""
    m, x, p = _cases()["image"](0)
    before = m.abduct(x, p).log_weight
    p["Z"].mul_(-1)  # the same tensor object, new values
    after = m.log_prob(x, p)
    assert not torch.equal(before, after)
    assert torch.equal(after, m.abduct(x, p).log_weight)


class OldContractGumbel:
    """A mechanism written before 2026-12-07: abduct returns the noise alone (and no abduct_noise)."""

    event_dim = 0

    def __init__(self, parents, probs):
        self.inner = GumbelMax(parents, probs)
        self.parents, self.size = self.inner.parents, self.inner.size

    def noise_prior(self, n):
        return self.inner.noise_prior(n)

    def assign(self, parents, noise):
        return self.inner.assign(parents, noise)

    def log_prob(self, value, parents):
        return self.inner.log_prob(value, parents)

    def abduct(self, value, parents):
        return self.inner.abduct(value, parents).noise


@pytest.mark.parametrize("checked", [False, True])
def test_a_mechanism_on_the_old_contract_answers_as_before(checked):
    """abduct() returning the noise alone still works (its weight from log_prob),
    bare and behind the plugin boundary, with the same numbers as the new contract."""
    story = load_story()
    new = build_scm(story)
    mechs = dict(new.mechanisms)
    for f in story.factors:
        old = OldContractGumbel(parents=mechs[f].parents, probs=mechs[f].probs)
        if checked:
            old = CheckedMechanism(old, "old", "a plugin")
            old.node = f
        mechs[f] = old
    old_scm = SCM(new.graph, mechs, world=new.world)
    a = infer(new, ["scale", "posY"], {"shape": 0}, HEART, 500, seed=3, resample_below=0.99)
    b = infer(old_scm, ["scale", "posY"], {"shape": 0}, HEART, 500, seed=3, resample_below=0.99)
    assert all(torch.equal(a.samples[t], b.samples[t]) for t in a.targets)
    assert torch.equal(a.weights, b.weights)
    m, v = mechs["scale"], torch.tensor([1, 2])
    got = abduction(m, v, {"shape": torch.tensor([0, 2])})
    assert torch.equal(got.log_weight, m.log_prob(v, {"shape": torch.tensor([0, 2])}))


def test_the_story_sampler_is_the_walk_of_its_tables():
    """Story.sample draws each factor in the walk's order from its table:
    its frequencies follow the story (P(scale | shape) for each shape)."""
    story = load_story()
    classes = story.sample(40000, np.random.default_rng(0))
    names = story.world.names
    shape, scale = classes[:, names.index("shape")], classes[:, names.index("scale")]
    for s in range(3):
        freq = np.bincount(scale[shape == s], minlength=6) / max(1, (shape == s).sum())
        assert np.abs(freq - story.table("scale")[s]).max() < 0.03
