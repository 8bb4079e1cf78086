"""Deployment readiness: the prerequisites a pool needs before phones use it (DNS,
certificates, time, a synthetic phone, the pool's copies, the directory), each checked
with a timeout and reported as PASS / WARN / FAIL with the fix in one line."""
