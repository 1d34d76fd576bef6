"""The SCM as a Pyro model: site names, build_scm, validation."""

import pytest
import torch
from pyro import poutine

from cvaeq.errors import MechanismError
from cvaeq.graph import CausalGraph
from cvaeq.mechanisms import GaussianLatent, GumbelMax
from cvaeq.scm import NOISE_PREFIX, SCM, build_scm, noise_site, scm_from_story, value_site
from cvaeq.story import load_story, story_from_text


def test_site_names_are_the_contract():
    assert NOISE_PREFIX == "N_"
    assert noise_site("shape") == "N_shape"
    assert value_site("shape") == "shape"
    trace = poutine.trace(build_scm(load_story()).model).get_trace(3)
    for v in ("Z", "shape", "scale", "orientation", "posX", "posY"):
        assert trace.nodes[noise_site(v)]["type"] == "sample"
        assert trace.nodes[value_site(v)]["infer"].get("_deterministic")


def test_build_scm_follows_the_story_without_image():
    story = load_story()
    scm = build_scm(story)
    assert "X" not in scm.graph
    assert scm.graph.parents("posY") == story.parents("posY")
    assert isinstance(scm.mechanisms["Z"], GaussianLatent) and scm.mechanisms["Z"].dim == story.latent_dim
    m = scm.mechanisms["scale"]
    assert isinstance(m, GumbelMax)
    assert torch.allclose(m.probs, torch.as_tensor(story.table("scale")))


def test_build_scm_factor_logits_replace_tables():
    story = load_story()
    logits = torch.zeros(3)
    scm = build_scm(story, factor_logits={"shape": logits})
    assert torch.allclose(scm.mechanisms["shape"].probs, torch.full((3,), 1 / 3, dtype=torch.float64))
    with pytest.raises(MechanismError, match="not a factor"):
        build_scm(story, factor_logits={"colour": logits})


def test_story_mechanism_key_picks_the_family():
    text = load_story().text.replace('[factors.shape]\nparents = []', '[factors.shape]\nmechanism = "nope"\nparents = []')
    story = story_from_text(text)
    assert story.mechanisms == {"shape": "nope"}
    with pytest.raises(MechanismError, match="unknown mechanism 'nope'; known: .*gumbel_max"):
        build_scm(story)


def test_scm_rejects_mechanisms_that_disagree_with_the_graph():
    g = CausalGraph([("a", "b")], nodes=["a", "b"])
    a = GumbelMax((), torch.tensor([0.5, 0.5]))
    with pytest.raises(MechanismError, match="'b' has no mechanism"):
        SCM(g, {"a": a})
    with pytest.raises(MechanismError, match="reads parents"):
        SCM(g, {"a": a, "b": GumbelMax((), torch.tensor([0.5, 0.5]))})


def test_forward_samples_follow_the_table():
    scm = build_scm(load_story())
    s = scm.sample(20000, seed=0)["shape"]
    freq = torch.bincount(s, minlength=3).double() / len(s)
    assert torch.allclose(freq, torch.tensor([0.35, 0.35, 0.30], dtype=torch.float64), atol=0.015)


def test_scm_from_story_is_the_factor_level_scm():
    story = load_story()
    a, b = scm_from_story(story), build_scm(story)
    assert a.graph == b.graph and a.mechanisms["posY"] == b.mechanisms["posY"]


def test_a_shared_noise_prior_store_gives_each_mechanism_its_own_prior_in_any_order():
    """Priors are kept per mechanism, not per node name: SCMs sharing one store
    whose node "shape" has different mechanisms (3 and 4 classes) each get
    their own, whichever asks first."""
    from cvaeq.scm import NoisePriors

    graph = CausalGraph([], nodes=["shape"])
    three, four = GumbelMax((), torch.full((3,), 1 / 3)), GumbelMax((), torch.full((4,), 1 / 4))
    for first, second in ((three, four), (four, three)):
        store = NoisePriors()
        a, b = SCM(graph, {"shape": first}, noise_priors=store), SCM(graph, {"shape": second}, noise_priors=store)
        assert a.noise_prior("shape", 5).event_shape == (first.size,)
        assert b.noise_prior("shape", 5).event_shape == (second.size,)
        assert a.noise_prior("shape", 5) is a.noise_prior("shape", 5)


def test_noise_priors_are_built_once_and_answers_do_not_depend_on_it():
    """An SCM keeps each node's noise prior per particle count, shared with the
    worlds intervene() derives from it; a reused SCM answers bit for bit as a new one."""
    from cvaeq.engine import infer, intervene

    scm = build_scm(load_story())
    prior = scm.noise_prior("shape", 7)
    assert scm.noise_prior("shape", 7) is prior and scm.noise_prior("shape", 8) is not prior
    assert intervene(scm, {"shape": 0}).noise_prior("shape", 7) is prior
    ask = lambda s: infer(s, ["scale"], {"shape": 0}, {"shape": torch.tensor(2), "scale": torch.tensor(1)}, 50, seed=3)
    first, again, fresh = ask(scm), ask(scm), ask(build_scm(load_story()))
    for r in (again, fresh):
        assert torch.equal(r.samples["scale"], first.samples["scale"]) and torch.equal(r.weights, first.weights)
