"""lrkit with Hugging Face: range test on a tiny GPT-2, then a Trainer on an lrkit schedule."""

import torch
from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

from lrkit.integrations.transformers import GuardCallback, find_lr, trainer_optimizers


class Counting(torch.utils.data.Dataset):
    """Sequences where each token is the previous one plus one: easy to learn."""

    def __len__(self):
        return 256

    def __getitem__(self, i):
        ids = (torch.arange(16) + i) % 64
        return {"input_ids": ids, "labels": ids.clone()}


torch.manual_seed(0)
config = GPT2Config(vocab_size=64, n_positions=32, n_embd=32, n_layer=1, n_head=2,
                    bos_token_id=0, eos_token_id=0)
model = GPT2LMHeadModel(config)  # random weights from a config: nothing is downloaded

loader = torch.utils.data.DataLoader(Counting(), batch_size=16, shuffle=True)
result = find_lr(model, loader, num_steps=60)           # dict batches, loss from model output
lr = result.suggest(schedule="cosine").lr or 1e-3       # None means "no clear answer"

args = TrainingArguments(output_dir="hf-example", max_steps=40, per_device_train_batch_size=16,
                         logging_steps=1, report_to=[], use_cpu=True, save_strategy="no")
trainer = Trainer(
    model=model, args=args, train_dataset=Counting(),
    optimizers=trainer_optimizers(model, "warmup(4, cosine(36))", lr=lr),
    callbacks=[GuardCallback(policy="scale_lr", lr_factor=0.5)],
)
trainer.train()
trainer.state.save_to_json("hf-example/trainer_state.json")  # `lrkit diagnose` reads this file
print(f"lr {lr:.2e}, final loss {trainer.state.log_history[-2]['loss']:.3f}")
