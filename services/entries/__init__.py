"""What patients record: doses, anxiety scores, side-effect reports and check-ins, each stored
exactly once (idempotency by the phone's id and the content's fingerprint), listed, synced in batches,
and marked entered-in-error. Recording an entry hands it to `services.flags` in the same transaction."""
