"""Fine-tuning and training Kronos tokenizers and predictors on a panel.

``run_finetune(config)`` is the one entry point (the CLI's ``kronos-quant finetune`` and
``python -m kronos_quant.training`` call it). Modules: ``config`` (the YAML schema),
``windows`` (normalised training windows), ``losses``, ``trainer`` (the resumable loop),
``distributed`` (torchrun/DDP), ``card`` (model cards), ``run`` (orchestration).
Knows nothing about forecasting engines, signals or backtests.
"""

from kronos_quant.training.config import FinetuneConfig, load_finetune_config
from kronos_quant.training.run import FinetuneResult, run_finetune
from kronos_quant.training.trainer import PhaseResult, StepEvent

__all__ = ["FinetuneConfig", "FinetuneResult", "PhaseResult", "StepEvent", "load_finetune_config", "run_finetune"]
