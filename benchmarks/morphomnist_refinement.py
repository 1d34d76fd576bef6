"""Refined vs amortised proposal on Morpho-MNIST digit 7001: ESS and time per query, 1 thread, interleaved."""
import os, time
from cvaeq.query.answer import ask
from cvaeq.mechanisms import levels_image as li
from cvaeq.mechanisms.image import BernoulliImage

Q = ["E[intensity | do(thickness=4), X=img]",
     "E[intensity | do(thickness=4), X=img, digit=2, thickness=1.83149, intensity=99.2075]",
     "P(X | do(thickness=4), X=img)"]
joint, latent = li.DiscretisedLogisticImage._joint_proposal, li.DiscretisedLogisticImage._latent_draw
def mode(on):
    li.DiscretisedLogisticImage._joint_proposal = joint if on else (lambda self, *a: None)
    li.DiscretisedLogisticImage._latent_draw = latent if on else BernoulliImage._latent_draw
ask(Q[1], "/tmp/d7001.png", story="morphomnist", seed=0, threads=1)  # warm
for rep in range(2):
    for q in Q:
        for on in (False, True):
            mode(on)
            t = time.perf_counter(); a = ask(q, "/tmp/d7001.png", story="morphomnist", seed=rep, threads=1); dt = time.perf_counter() - t
            print(f"{'refined' if on else 'q alone':8} seed {rep} ESS {a.ess:7.1f}/{a.samples:<5} {dt:6.2f} s  load {os.getloadavg()[0]:.2f}  {q}", flush=True)
