"""The character-level causal transformer LM of Orbit's built-in tasks; copied into a bundle as scripts/charlm.py.

Shared by trainer.py (model.kind char-lm), evaluator.py (perplexity per environment) and collector.py
(source kind rollouts). torch is imported on first use, so the module loads without it.

Vocabulary: the sorted characters of the training text, ids 0..V-1 (meta.json `vocab`, a list of
one-character strings); id V (meta.json `unknownId`) stands for any other character. It is never a
training target: a text scored later feeds it as input where it has a character outside the vocabulary,
and such a character is not scored as a target (it is counted as `oovChars`).

Model: token and learned position embeddings, `layers` pre-norm blocks (causal multi-head
self-attention, then a 4x GELU MLP, each with a residual), a final LayerNorm and an output layer tied to
the token embedding. Weights start at N(0, 0.02), so the first loss is close to ln(V + 1).

Checkpoint (a folder written by trainer.py): model.pt (the state_dict), optimizer.pt, meta.json
(kind "char-lm", vocab, unknownId, architecture, step, ...), logging.jsonl and the marker, last.
"""
import json
import math
import os

from tabular import TaskError, read_checkpoint_meta

KIND = "char-lm"
#: The fields of meta.json `architecture` that shape the model (with `vocabSize`).
ARCHITECTURE = ("contextLength", "layers", "heads", "embedDim", "dropout")


def read_text(path):
    """The text of a UTF-8 file (a byte-order mark dropped, line ends read as \n); TaskError naming the
    file when it cannot be read or decoded."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except OSError as e:
        raise TaskError(f"{path}: cannot be read ({e.strerror})")
    except UnicodeDecodeError as e:
        raise TaskError(f"{path}: is not UTF-8 text (byte {e.start}: {e.reason})")


def build_vocab(text):
    """The sorted characters of `text`: ids 0..len-1; len is the unknown id."""
    return sorted(set(text))


def encode(text, vocab):
    """Ids of `text` under `vocab` (characters outside it get the unknown id, len(vocab)), and how many those were."""
    index = {c: i for i, c in enumerate(vocab)}
    unknown = len(vocab)
    ids = [index.get(c, unknown) for c in text]
    return ids, sum(1 for i in ids if i == unknown)


def decode(ids, vocab, unknown="\ufffd"):
    return "".join(vocab[i] if i < len(vocab) else unknown for i in ids)


def _modules():
    import torch
    from torch import nn
    from torch.nn import functional as F

    class Block(nn.Module):
        def __init__(self, dim, heads, dropout):
            super().__init__()
            self.heads, self.dropout = heads, dropout
            self.norm1 = nn.LayerNorm(dim)
            self.qkv = nn.Linear(dim, 3 * dim)
            self.proj = nn.Linear(dim, dim)
            self.norm2 = nn.LayerNorm(dim)
            self.fc = nn.Linear(dim, 4 * dim)
            self.out = nn.Linear(4 * dim, dim)
            self.drop = nn.Dropout(dropout)

        def forward(self, x):
            b, t, c = x.shape
            q, k, v = self.qkv(self.norm1(x)).split(c, dim=2)
            q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=self.dropout if self.training else 0.0)
            x = x + self.drop(self.proj(y.transpose(1, 2).reshape(b, t, c)))
            return x + self.drop(self.out(F.gelu(self.fc(self.norm2(x)))))

    class CharLM(nn.Module):
        def __init__(self, vocab_size, context, layers, heads, dim, dropout):
            super().__init__()
            self.context = context
            self.tok = nn.Embedding(vocab_size, dim)
            self.pos = nn.Embedding(context, dim)
            self.drop = nn.Dropout(dropout)
            self.blocks = nn.ModuleList(Block(dim, heads, dropout) for _ in range(layers))
            self.norm = nn.LayerNorm(dim)
            self.head = nn.Linear(dim, vocab_size, bias=False)
            self.head.weight = self.tok.weight  # tied
            for m in self.modules():
                if isinstance(m, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(m.weight, 0.0, 0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

        def forward(self, idx):
            x = self.drop(self.tok(idx) + self.pos(torch.arange(idx.shape[1], device=idx.device)))
            for block in self.blocks:
                x = block(x)
            return self.head(self.norm(x))

    return CharLM


def build_model(vocab_size, arch):
    """A fresh CharLM for `vocab_size` ids (the vocabulary and the unknown id) and an architecture mapping."""
    return _modules()(vocab_size, arch["contextLength"], arch["layers"], arch["heads"], arch["embedDim"], arch["dropout"])


def parameter_count(model):
    # The tied output layer shares the token embedding: count each tensor once.
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def load_model(folder):
    """The CharLM of a complete char-lm checkpoint folder, in eval mode. Returns (model, meta)."""
    import torch

    meta = read_checkpoint_meta(folder)
    if meta.get("kind") != KIND:
        raise TaskError(f"{folder}: meta.json kind is {meta.get('kind', 'mlp')!r}, not {KIND!r}: not a language model checkpoint")
    model = build_model(meta["vocabSize"], meta["architecture"])
    try:
        model.load_state_dict(torch.load(os.path.join(folder, "model.pt"), weights_only=True))
    except (OSError, RuntimeError) as e:
        raise TaskError(f"{folder}/model.pt: cannot be loaded as this checkpoint's model ({str(e).splitlines()[0]})")
    model.eval()
    return model, meta


def windows(ids, context, stride):
    """(start, first scored offset) of the windows that score every position of `ids` once: each window holds
    context+1 ids (inputs and next-character targets); after the first, only its last `stride` targets count,
    so every scored character has at least context-stride characters before it (all there are, near the start)."""
    n = len(ids) - 1  # targets
    if n <= 0:
        return []
    out = [(0, 0)]
    end = min(context, n)  # targets [0, end) scored
    while end < n:
        start = max(0, min(end + stride, n) - context)
        out.append((start, end - start))
        end = min(start + context, n)
    return out


def score(model, ids, unknown_id, batch=64, stride=None):
    """Next-character scores of a text: {nll (sum, nats), correct, chars (scored targets), oovChars}.

    Targets that are the unknown id (characters outside the vocabulary) are not scored; they still feed
    the model as inputs. Every other position is scored once, with up to contextLength characters before it."""
    import torch
    from torch.nn import functional as F

    context = model.context
    stride = stride or max(1, context // 2)
    data = torch.tensor(ids, dtype=torch.long)
    nll, correct, chars = 0.0, 0, 0
    spans = windows(ids, context, stride)
    with torch.no_grad():
        for i in range(0, len(spans), batch):
            group = spans[i:i + batch]
            length = max(min(context, len(ids) - 1 - s) for s, _ in group)
            x = torch.full((len(group), length), unknown_id, dtype=torch.long)
            y = torch.full((len(group), length), -1, dtype=torch.long)
            for row, (start, first) in enumerate(group):
                take = min(context, len(ids) - 1 - start)
                x[row, :take] = data[start:start + take]
                target = data[start + 1:start + 1 + take].clone()
                target[:first] = -1  # scored by an earlier window
                y[row, :take] = target
            y[y == unknown_id] = -1
            logits = model(x)
            mask = y >= 0
            if not mask.any():
                continue
            nll += F.cross_entropy(logits[mask], y[mask], reduction="sum").item()
            correct += (logits[mask].argmax(dim=-1) == y[mask]).sum().item()
            chars += int(mask.sum().item())
    oov = sum(1 for t in ids[1:] if t == unknown_id)
    return {"nll": nll, "correct": correct, "chars": chars, "oovChars": oov}


def summary_of(scores):
    """perplexity (per character), accuracy (next character, argmax), bitsPerChar of score()'s sums."""
    if scores["chars"] == 0:
        return {"perplexity": None, "accuracy": None, "bitsPerChar": None, "chars": 0, "oovChars": scores["oovChars"]}
    mean = scores["nll"] / scores["chars"]
    return {
        "perplexity": math.exp(mean),
        "accuracy": scores["correct"] / scores["chars"],
        "bitsPerChar": mean / math.log(2),
        "chars": scores["chars"],
        "oovChars": scores["oovChars"],
    }


def sample(model, prompt_ids, samples, max_new, temperature, generator):
    """`samples` continuations of one prompt (lists of `max_new` ids each), drawn together with `generator`.

    temperature 0 takes the most likely character (greedy: the same for every sample). The model sees at
    most its last contextLength ids; `prompt_ids` holds at least one id. The unknown id is never drawn."""
    import torch

    context = model.context
    x = torch.tensor([prompt_ids] * samples, dtype=torch.long)
    out = []
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(x[:, -context:])[:, -1, :]
            logits[:, -1] = float("-inf")  # never the unknown id (the last id)
            if temperature <= 0:
                nxt = logits.argmax(dim=-1, keepdim=True)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, 1, generator=generator)
            out.append(nxt)
            x = torch.cat([x, nxt], dim=1)
    return torch.cat(out, dim=1).tolist() if out else [[] for _ in range(samples)]


def meta_summary(meta):
    """One line about a char-lm checkpoint for a log."""
    a = meta["architecture"]
    return (f"step {meta['step']}, char-lm {a['layers']} layers x {a['embedDim']} dims, {a['heads']} heads, context {a['contextLength']}, "
            f"{len(meta['vocab'])} characters, {a.get('parameters', '?')} parameters")


def write_jsonl(path, records):
    with open(path, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
