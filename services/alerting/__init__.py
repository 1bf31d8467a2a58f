"""Alerting the clinic: webhook endpoints and the URLs we may call, the transactional outbox written with
each flag event, and the worker job that signs (Standard Webhooks) and delivers them with retries."""
