"""`roadsight <command> [hydra overrides]`: one entry point dispatching to the Hydra apps."""

from __future__ import annotations

import importlib
import sys

from roadsight.overrides import check_overrides

# command -> (module:function, one-line purpose). Each app's primary config is conf/<command>.yaml.
COMMANDS: dict[str, tuple[str, str]] = {
    "record": ("sim.record:main", "drive episodes and write camera frames + COCO ground truth"),
    "train-detector": ("perception.train:main", "train the CNN detector on recorded datasets"),
    "val-detector": ("perception.val:main", "score a detector checkpoint with COCO mAP"),
    "detect": ("perception.detect:main", "run a detector on a video or image folder"),
    "export": ("perception.export:main", "export a detector checkpoint to ONNX"),
    "train": ("agents.train:main", "train a driving policy with stable-baselines3"),
    "eval": ("agents.evaluate:main", "evaluate a policy or driver: metrics, videos, report"),
    "summarize": ("roadsight.summarize:main", "one table of a multirun's jobs and their metrics"),
    "bench": ("roadsight.bench.run:main", "run benchmark suites and print measured ratios"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: roadsight <command> [hydra overrides...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {purpose}" for name, (_, purpose) in COMMANDS.items()]
    lines += ["", "`roadsight <command> --help` shows the command's config and Hydra's options."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        sys.exit(f"roadsight: unknown command {command!r}; choose from: {', '.join(COMMANDS)}")
    module_name, func_name = COMMANDS[command][0].split(":")
    app = getattr(importlib.import_module(module_name), func_name)
    if (problem := check_overrides(rest, command.replace("-", "_"))) is not None:
        sys.exit(f"roadsight {command}: {problem}")  # before Hydra's dozen-line messages
    sys.argv = [f"roadsight {command}", *rest]  # Hydra parses sys.argv
    from roadsight.launch import quiet_schema_warning

    quiet_schema_warning()  # conf/hydra/launcher/ extends the plugins' schemas on purpose
    app()


if __name__ == "__main__":
    main()
