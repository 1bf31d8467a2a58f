"""Accounts and access: who the caller is (sign-in, tokens, passwords, enrollment, throttling) and what
they may see (`access`, the one place every patient query is scoped from), plus the organizations,
staff and patients themselves."""
