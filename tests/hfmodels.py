"""Small Hugging Face models and tokenizers built offline, for the tests of
models we did not train (nothing is downloaded)."""

from __future__ import annotations

import random
from pathlib import Path

import torch


def tokenizer(vocab_size: int = 300):
    """A byte-level BPE with an end-of-text token, trained on a little text
    (a ``PreTrainedTokenizerFast``, saved with ``save_pretrained``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from interp.data.corpus import load_documents

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(load_documents("python-stdlib", "test")[:5], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>"
    )
    return fast


def gpt2(vocab: int = 320, n_ctx: int = 128, layers: int = 2, d: int = 32, seed: int = 0):
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    cfg = GPT2Config(
        n_layer=layers,
        n_embd=d,
        n_head=4,
        vocab_size=vocab,
        n_positions=n_ctx,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    return GPT2LMHeadModel(cfg).eval()


def neox(vocab: int = 320, n_ctx: int = 128, layers: int = 2, d: int = 32, seed: int = 0):
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    torch.manual_seed(seed)
    cfg = GPTNeoXConfig(
        num_hidden_layers=layers,
        hidden_size=d,
        num_attention_heads=4,
        intermediate_size=4 * d,
        vocab_size=vocab,
        max_position_embeddings=n_ctx,
        bos_token_id=0,
        eos_token_id=0,
        attn_implementation="eager",
    )
    return GPTNeoXForCausalLM(cfg).eval()


def repeated_batch(n: int, seq: int, vocab: tuple[int, int], rng: random.Random) -> torch.Tensor:
    """Sequences that repeat a random segment of random period (8 … seq/2), so
    that only an induction-like lookup predicts them."""
    rows = []
    for _ in range(n):
        period = rng.randint(8, seq // 2)
        seg = [rng.randrange(*vocab) for _ in range(period)]
        rows.append((seg * (seq // period + 1))[:seq])
    return torch.tensor(rows)


def train_series(
    model,
    out: Path,
    steps: list[int],
    tok=None,
    lr: float = 3e-3,
    seed: int = 0,
    seq: int = 64,
    vocab: tuple[int, int] = (1, 256),
    batch: int = 16,
) -> dict[int, Path]:
    """Train ``model`` on repeated sequences, writing a ``save_pretrained``
    directory ``out/step_N`` at each of ``steps`` (with the tokenizer)."""
    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    dirs = {}
    model.train()
    for step in range(max(steps) + 1):
        if step in steps:
            d = out / f"step_{step}"
            model.save_pretrained(d)
            if tok is not None:
                tok.save_pretrained(d)
            dirs[step] = d
        if step == max(steps):
            break
        x = repeated_batch(batch, seq, vocab, rng)
        loss = model(x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return dirs


def fill_hub_cache(home: Path, repo: str, revisions: dict[str, object], tok=None) -> None:
    """Lay out ``$HF_HOME/hub`` as a download would: each revision a snapshot
    of the given model (and tokenizer), its name a ref pointing at the
    snapshot's commit."""
    folder = home / "hub" / ("models--" + repo.replace("/", "--"))
    for i, (rev, model) in enumerate(revisions.items()):
        commit = f"{i + 1:040x}"
        model.save_pretrained(folder / "snapshots" / commit)
        if tok is not None:
            tok.save_pretrained(folder / "snapshots" / commit)
        (folder / "refs").mkdir(parents=True, exist_ok=True)
        (folder / "refs" / rev).write_text(commit)
