"""C3's grid: SIFT (vanilla / src / mrc, with and without the instruction, 0 / 2 / 8 demonstrations) against
in-context learning without fine-tuning and the bidir tagger on the same model."""

import argparse
import itertools
from typing import List, Tuple

from grid_runs import backbone_setting, common_overrides, train_and_evaluate, write_config

# (strategy, instruction, demonstrations) of the claims subset: the strategies at 2 demos, the instruction
# at mrc, 2 demos, and the number of demos at mrc without instruction.
C3_CLAIMS_SFT = (
    ("mrc", False, 2),
    ("src", False, 2),
    ("vanilla", False, 2),
    ("mrc", True, 2),
    ("mrc", False, 0),
    ("mrc", False, 8),
)


def c3_settings(subset: str) -> List[Tuple[str, bool, int]]:
    """(strategy, instruction, demonstrations) of each SIFT run of one seed, in run order."""
    if subset == "claims":
        return list(C3_CLAIMS_SFT)
    return list(itertools.product(["vanilla", "src", "mrc"], [True, False], [0, 2, 8]))


def grid_c3(args: argparse.Namespace) -> None:
    sft = args.sft_config
    for seed in args.seeds:
        for strategy, instruction, n_demos in c3_settings(args.subset):
            name = f"c3-{strategy}-{'instr' if instruction else 'noinstr'}-{n_demos}d-s{seed}"
            overrides = {
                **common_overrides(args, seed, args.sft_steps, args.decoder_lr),
                "components.sft.model.name": args.decoder,
                "components.sft.strategy": strategy,
                "components.sft.instruction": instruction,
                "components.sft.n_demos": n_demos,
                "components.sft.max_prompt_tokens": 2048,
            }
            config = write_config(sft, overrides, args.output / "configs" / f"{name}.cfg")
            setting = f"{strategy}, {'instruction' if instruction else 'no instruction'}, {n_demos} demos"
            train_and_evaluate(
                args.output,
                name,
                config,
                args.test_sft,
                "seqlab_llm_sft",
                setting,
                test_batch_size=16,
                gpu_id=args.gpu_id,
            )
        # In-context learning without fine-tuning: the same prompts, the pre-trained model. It trains nothing,
        # and demonstrations and decoding do not depend on the seed, so the claims subset runs it once (at the
        # first seed that gets to it).
        done = sorted(path.stem for path in (args.output / "metrics").glob("c3-icl-s*.json"))
        if args.subset == "claims" and done and f"c3-icl-s{seed}" not in done:
            print(f"skip c3-icl-s{seed}: in-context learning does not depend on the seed ({done[0]} is done)")
        else:
            name = f"c3-icl-s{seed}"
            overrides = {
                **common_overrides(args, seed, 1),
                "components.sft.model.name": args.decoder,
                "components.sft.n_demos": 8,
                "components.sft.max_prompt_tokens": 2048,
            }
            config = write_config(sft, overrides, args.output / "configs" / f"{name}.cfg")
            train_and_evaluate(
                args.output,
                name,
                config,
                args.test_sft,
                "in-context learning",
                "no fine-tuning, 8 dense demos",
                ["--no-train"],
                test_batch_size=16,
                gpu_id=args.gpu_id,
            )
        name = f"c3-bidir-s{seed}"
        overrides = {
            **common_overrides(args, seed, args.bidir_steps, args.decoder_lr),
            "components.bidir.model.backbone.name": args.decoder,
        }
        config = write_config(args.bidir_config, overrides, args.output / "configs" / f"{name}.cfg")
        setting = f"same model, unmask {backbone_setting(config, 'unmask')}"
        train_and_evaluate(args.output, name, config, args.test_sft, "seqlab_bidir_tagger", setting, gpu_id=args.gpu_id)
