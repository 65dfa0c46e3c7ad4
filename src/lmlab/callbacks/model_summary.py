"""Lightning's Rich model summary, without FLOPs figures that only ever read 0 here."""

from __future__ import annotations

from typing import Any

from lightning.pytorch.callbacks import RichModelSummary
from lightning.pytorch.utilities.model_summary import get_formatted_model_size, get_human_readable_count


class ModelSummary(RichModelSummary):
    """`RichModelSummary` that leaves out the FLOPs column and "Total FLOPs" when they are 0: Lightning counts
    FLOPs only for a module with an `example_input_array`, which lmlab's modules have no use for, so a
    summary saying "Total FLOPs: 0" is noise (and reads as a bug)."""

    @staticmethod
    def summarize(summary_data: list[tuple[str, list[str]]], total_parameters: int, trainable_parameters: int,
                  model_size: float, total_training_modes: dict[str, int], total_flops: int,
                  **summarize_kwargs: Any) -> None:
        if total_flops:
            RichModelSummary.summarize(summary_data, total_parameters, trainable_parameters, model_size,
                                       total_training_modes, total_flops, **summarize_kwargs)
            return
        from rich import get_console
        from rich.table import Table

        columns = [(name, values) for name, values in summary_data if name != "FLOPs"]
        table = Table(header_style=summarize_kwargs.get("header_style", "bold magenta"))
        for name, _ in columns:
            table.add_column(name, justify="right" if name == "Params" else "left")
        for row in zip(*(values for _, values in columns), strict=True):
            table.add_row(*row)
        console = get_console()
        console.print(table)
        frozen = int(total_parameters - trainable_parameters)
        console.print(f"Trainable params: {get_human_readable_count(int(trainable_parameters))}\n"
                      f"Non-trainable params: {get_human_readable_count(frozen)}\n"
                      f"Total params: {get_human_readable_count(int(total_parameters))}\n"
                      f"Total estimated model params size (MB): {get_formatted_model_size(model_size)}\n"
                      f"Modules in train mode: {total_training_modes['train']}\n"
                      f"Modules in eval mode: {total_training_modes['eval']}", highlight=False)
