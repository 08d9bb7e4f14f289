"""lrkit with Hugging Face: the range test through the Trainer's own training step, its result
as TrainingArguments, a search bounded by it, and a live Guard."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from lrkit.integrations.transformers import GuardCallback, find_lr, hp_space, training_args


class Counting(torch.utils.data.Dataset):
    """Sequences where each token is the previous one plus one: easy to learn."""

    def __len__(self):
        return 256

    def __getitem__(self, i):
        ids = (torch.arange(16) + i) % 64
        return {"input_ids": ids, "labels": ids.clone()}


def model_init():  # random weights from a config: nothing is downloaded
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1,
                                      n_head=2, bos_token_id=0, eos_token_id=0))


common = dict(output_dir="hf-example", per_device_train_batch_size=16, bf16=True,
              gradient_accumulation_steps=2, use_cpu=True, report_to=[], save_strategy="no")
trainer = Trainer(model_init=model_init, args=TrainingArguments(max_steps=40, **common),
                  train_dataset=Counting(), eval_dataset=Counting())
result = find_lr(trainer, num_steps=60)  # the Trainer's own step: bf16, 2 micro-batches a step
suggested = training_args(result, max_steps=40)  # learning_rate, lr_scheduler_type, warmup_steps

best = trainer.hyperparameter_search(  # or search around it, within the range test's bounds
    backend="optuna", hp_space=hp_space(result), n_trials=2, direction="minimize")

args = TrainingArguments(max_steps=40, logging_steps=1, **suggested, **common)
trainer = Trainer(model_init=model_init, args=args, train_dataset=Counting(),
                  callbacks=[GuardCallback(policy="scale_lr", lr_factor=0.5)])
trainer.train()
trainer.state.save_to_json("hf-example/trainer_state.json")  # `lrkit diagnose` reads this file
print(f"{suggested}, searched lr {best.hyperparameters['learning_rate']:.2e}, "
      f"final loss {trainer.state.log_history[-2]['loss']:.3f}")
