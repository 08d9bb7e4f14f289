"""lrkit's verified learning rate through a Hugging Face Trainer: a short guarded race on
eval_loss, each trial the Trainer's own train(); the answer as TrainingArguments, or the same
plan inside trainer.hyperparameter_search."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from lrkit.integrations.transformers import race_search, training_args, verify_lr


class Counting(torch.utils.data.Dataset):
    """Sequences where each token is the previous one plus one: easy to learn."""

    def __init__(self, n, offset=0):
        self.n, self.offset = n, offset

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        ids = (torch.arange(16) + i + self.offset) % 64
        return {"input_ids": ids, "labels": ids.clone()}


def model_init():  # random weights from a config: nothing is downloaded
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1,
                                      n_head=2, bos_token_id=0, eos_token_id=0))


common = dict(output_dir="hf-race", max_steps=60, per_device_train_batch_size=16,
              gradient_accumulation_steps=2, use_cpu=True, report_to=[], save_strategy="no",
              disable_tqdm=True)
data = dict(train_dataset=Counting(256), eval_dataset=Counting(64, offset=7))
trainer = Trainer(model_init=model_init, **data,
                  args=TrainingArguments(lr_scheduler_type="cosine", warmup_steps=0.1, **common))
result = verify_lr(trainer, budget=3)  # every trial: the Trainer's own step, then evaluate()
kwargs = training_args(result)  # the winner, with the schedule raced (cosine, 6 warmup steps)

trainer = Trainer(model_init=model_init, args=TrainingArguments(**kwargs, **common), **data)
trainer.train()
final = trainer.evaluate()["eval_loss"]

# or the race's plan inside hyperparameter_search: its candidates first, a halving pruner
best = trainer.hyperparameter_search(backend="optuna", direction="minimize",
                                     **race_search(result.range_test, max_steps=60))
print(f"{kwargs}, spent {result.spent_budgets:.2f} runs; final eval_loss {final:.3f}; "
      f"searched lr {best.hyperparameters['learning_rate']}")
