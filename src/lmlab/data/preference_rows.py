"""One preference row of any common shape → (prompt messages, chosen messages, rejected messages).

Shapes (TRL's names):
  explicit prompt:   prompt, chosen and rejected as strings, or as message lists (prompt: the conversation so far,
                     chosen/rejected: the assistant turn(s)), e.g. a `prompt` column beside message lists;
  implicit prompt:   no prompt column; chosen and rejected are whole conversations sharing their beginning
                     (trl-lib/ultrafeedback_binarized: message lists; Anthropic/hh-rlhf: strings of
                     "\\n\\nHuman: …\\n\\nAssistant: …" turns, parsed into messages here). The shared turns are the
                     prompt.
"""

from __future__ import annotations

import re

from lmlab.data.chat import conversation
from lmlab.errors import LmlabError

Messages = list[dict[str, str]]
# Anthropic/hh-rlhf's turn markers: "\n\nHuman: " and "\n\nAssistant: " before each turn.
HH_TURN = re.compile(r"\n\n(Human|Assistant):[ ]?")
HH_ROLES = {"Human": "user", "Assistant": "assistant"}


def hh_messages(text: str) -> Messages | None:
    """An hh-rlhf transcript as messages; None when `text` is not one."""
    parts = HH_TURN.split(text)
    if len(parts) < 3 or parts[0].strip():
        return None
    return [{"role": HH_ROLES[role], "content": content.strip()} for role, content in zip(parts[1::2], parts[2::2],
                                                                                             strict=True)]


def as_messages(value, what: str) -> Messages:
    """A message list as plain `{role, content}` dicts; a string is one assistant turn."""
    if isinstance(value, str):
        return [{"role": "assistant", "content": value}]
    if isinstance(value, list) and all(isinstance(m, dict) and {"role", "content"} <= m.keys() for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value]
    raise LmlabError(f"{what} holds {type(value).__name__} values, not strings or lists of {{role, content}}")


def preference_pair(prompt, chosen, rejected, system_prompt: str | None, where: str) \
        -> tuple[Messages, Messages, Messages]:
    """(prompt, chosen, rejected) messages of one row; `prompt` None: the turns chosen and rejected share."""
    if prompt is None:
        if isinstance(chosen, str) and isinstance(rejected, str):
            chosen_turns, rejected_turns = hh_messages(chosen), hh_messages(rejected)
            if chosen_turns is None or rejected_turns is None:
                raise LmlabError(f"{where}: without a prompt column, chosen and rejected must be conversations "
                                 "(message lists, or hh-rlhf's '\\n\\nHuman: ...\\n\\nAssistant: ...' text); "
                                 "name the prompt column with data.prompt_column=...")
            chosen, rejected = chosen_turns, rejected_turns
        chosen, rejected = as_messages(chosen, f"{where} chosen"), as_messages(rejected, f"{where} rejected")
        shared = 0
        while shared < min(len(chosen), len(rejected)) - 1 and chosen[shared] == rejected[shared]:
            shared += 1
        prompt_messages, chosen, rejected = chosen[:shared], chosen[shared:], rejected[shared:]
    else:
        prompt_messages = conversation(prompt) if isinstance(prompt, str) else as_messages(prompt, f"{where} prompt")
        chosen, rejected = as_messages(chosen, f"{where} chosen"), as_messages(rejected, f"{where} rejected")
    if system_prompt and (not prompt_messages or prompt_messages[0]["role"] != "system"):
        prompt_messages = [{"role": "system", "content": system_prompt}, *prompt_messages]
    return prompt_messages, chosen, rejected
