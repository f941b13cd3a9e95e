"""Can a policy fit the IDM teacher's actions from its observation? A diagnostic for DAgger.

Drives STEPS env steps with the teacher (one env, seed 123), then trains the experiment's
fresh policy on the first 80% exactly as agents.imitation's rounds do (cross-entropy +
value regression, Adam), printing train and held-out accuracy against the majority action.

    python scripts/imitation_fit.py --steps 3000 --epochs 40 --lr 1e-4 \
        experiment=urban_crossing observation=pixels extractor=nature_cnn

(2026-12-03, urban_crossing pixels: at lr 1e-3 the NatureCNN stays at the majority action,
0.543 train / 0.490 held-out on 3,000 steps; at 1e-4 it reaches 0.683 / 0.685 in 40 epochs,
at 3e-4 0.874 / 0.545.)
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--value-coef", type=float, default=0.5)
    parser.add_argument("overrides", nargs="*", help="conf/train.yaml overrides")
    args = parser.parse_args()
    os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")

    import torch as th
    from hydra import compose, initialize_config_dir

    from agents.build import NEEDS_DETECTOR, build_agent, build_env, load_perception, teacher_config
    from agents.imitation import LABEL, DaggerOptions, _fit, _reset_label, discounted_returns
    from roadsight.paths import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[*args.overrides, "n_envs=1", "imitation.teacher=idm"])
    th.set_num_threads(1)
    perception = (load_perception(cfg, "bev", "outputs/imitation_fit")
                  if cfg.observation.name in NEEDS_DETECTOR else None)
    venv = build_env(cfg, 1, perception, teacher=teacher_config(cfg))
    model = build_agent(cfg, venv, perception=perception)
    venv.seed(123)
    obs, label = venv.reset(), _reset_label(venv, 0)
    observations, labels, rewards, dones = [], [], [], []
    clock = time.monotonic()
    for _ in range(args.steps):  # the teacher drives
        observations.append(obs[0])
        labels.append(label)
        obs, reward, done, infos = venv.step(np.array([label]))
        rewards.append(reward[0])
        dones.append(done[0])
        label = _reset_label(venv, 0) if done[0] else infos[0][LABEL]
    venv.close()
    obs_all, labels = np.stack(observations), np.array(labels)
    returns = discounted_returns(np.array(rewards), np.array(dones), model.gamma)
    print(f"{args.steps} teacher steps in {time.monotonic() - clock:.0f} s; observation "
          f"{obs_all.shape[1:]} {obs_all.dtype}; action shares "
          f"{np.round(np.bincount(labels, minlength=5) / len(labels), 3).tolist()}")
    split = int(0.8 * len(labels))

    def accuracy(lo: int, hi: int) -> float:
        pred = np.concatenate([model.predict(obs_all[i:min(i + 256, hi)], deterministic=True)[0]
                               for i in range(lo, hi, 256)])
        return float(np.mean(pred == labels[lo:hi]))

    def majority(lo: int, hi: int) -> float:
        return float(np.mean(labels[lo:hi] == np.bincount(labels[:split]).argmax()))

    print(f"majority action: train {majority(0, split):.3f}, held-out "
          f"{majority(split, len(labels)):.3f}")
    options = DaggerOptions(epochs=1, learning_rate=args.lr, value_coef=args.value_coef,
                            batch_size=int(cfg.imitation.batch_size))
    optimizer = th.optim.Adam(model.policy.parameters(), lr=args.lr)
    rng, clock = np.random.default_rng(0), time.monotonic()
    for epoch in range(args.epochs):
        loss = _fit(model.policy, optimizer, obs_all[:split], labels[:split],
                    returns[:split].astype(np.float32), options, rng)
        if epoch % max(1, args.epochs // 8) == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch}: loss {loss:.3f}, accuracy train {accuracy(0, split):.3f}, "
                  f"held-out {accuracy(split, len(labels)):.3f} "
                  f"({time.monotonic() - clock:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
