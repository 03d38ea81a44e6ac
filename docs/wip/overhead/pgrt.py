# Diagnosis script of the session-10 overhead work (issue #15); see README, orchestration overhead.
import time, psycopg
c = psycopg.connect("postgresql://postgres@127.0.0.1:5432/test")
cur = c.cursor()
cur.execute("drop table if exists ovh_t; create table ovh_t (x int)"); c.commit()
def bench(label, f, n=300):
    t=time.perf_counter()
    for _ in range(n): f()
    print(label, round((time.perf_counter()-t)/n*1000, 3), "ms")
bench("select 1", lambda: cur.execute("select 1"))
def tx(sync=True):
    if not sync: cur.execute("set local synchronous_commit=off")
    cur.execute("insert into ovh_t values (1)"); c.commit()
bench("insert+commit", tx)
bench("insert+commit async", lambda: tx(False))
cur.execute("show synchronous_commit"); print(cur.fetchone()); cur.execute("show fsync"); print(cur.fetchone()); cur.execute("show wal_sync_method"); print(cur.fetchone())
cur.execute("drop table ovh_t"); c.commit()
