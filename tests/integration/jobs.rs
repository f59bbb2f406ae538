//! The job queue on both engines: exactly-once with concurrent workers, orphan recovery,
//! retries with backoff, priorities and de-duplication. The handlers are small closures
//! (the denoise and fine-tune jobs come later); the queue, its SQL and the workers are real.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use petal::domain::JobState;
use petal::jobs::worker::{Handler, Worker, WorkerSettings};
use petal::storage::Database;
use petal::storage::jobs::{self, NewJob};
use serde_json::json;

use crate::common::{Engine, TestDatabase};
use crate::on_both_engines;

fn fast() -> WorkerSettings {
    WorkerSettings {
        poll_interval: Duration::from_millis(50),
        // Long enough that a busy CI machine's slow writes do not expire healthy leases.
        lease: Duration::from_secs(3),
        heartbeat: Duration::from_millis(100),
        backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
    }
}

async fn database(engine: Engine) -> (TestDatabase, Database) {
    let test_db = TestDatabase::create(engine).await;
    let db = Database::connect(&test_db.url, 5).await.expect("connect");
    db.migrate().await.expect("migrate");
    (test_db, db)
}

fn job<'a>(kind: &'a str, payload: &'a serde_json::Value, key: Option<&'a str>) -> NewJob<'a> {
    NewJob { kind, priority: if kind == "denoise" { 10 } else { 20 }, payload, dedupe_key: key, max_attempts: 3 }
}

/// A handler that records the `n` of each payload it runs.
fn recorder(seen: Arc<Mutex<Vec<i64>>>) -> Handler {
    Arc::new(move |job| {
        let seen = seen.clone();
        Box::pin(async move {
            let payload: serde_json::Value = serde_json::from_str(&job.payload)?;
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen.lock().expect("lock").push(payload["n"].as_i64().unwrap_or(-1));
            Ok(())
        })
    })
}

async fn two_workers_run_each_job_exactly_once(engine: Engine) {
    let (_guard, db) = database(engine).await;
    for n in 0..10 {
        jobs::enqueue(&db, &job("denoise", &json!({ "n": n }), None)).await.expect("enqueue");
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let worker = Worker::new(db.clone(), fast()).register("denoise", recorder(seen.clone()));
            tokio::spawn(worker.run(stopped.clone()))
        })
        .collect();
    for _ in 0..200 {
        if seen.lock().expect("lock").len() >= 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let _ = stop.send(true);
    for worker in workers {
        worker.await.expect("join").expect("worker");
    }
    let mut seen = seen.lock().expect("lock").clone();
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>(), "every job ran exactly once");
    let done = jobs::list(&db, Some(JobState::Succeeded), None, 100).await.expect("list");
    assert_eq!(done.len(), 10);
}
on_both_engines!(two_workers_run_each_job_exactly_once);

async fn an_orphaned_job_runs_again_after_its_lease(engine: Engine) {
    let (_guard, db) = database(engine).await;
    let id =
        jobs::enqueue(&db, &job("denoise", &json!({ "n": 7 }), Some("series-1"))).await.expect("enqueue").expect("new");
    // A worker claims the job and dies: no heartbeat, no outcome.
    let claimed = jobs::claim(&db, "dead-worker", &["denoise"], 300).await.expect("claim").expect("a job");
    assert_eq!(claimed.id, id);
    assert!(
        jobs::enqueue(&db, &job("denoise", &json!({}), Some("series-1"))).await.expect("enqueue").is_none(),
        "de-duplicated"
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let survivor = Worker::new(db.clone(), fast()).register("denoise", recorder(seen.clone()));
    assert!(!survivor.run_once().await.expect("run"), "the lease still holds");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(survivor.run_once().await.expect("run"), "the sweep re-queued the orphan");
    assert_eq!(*seen.lock().expect("lock"), vec![7]);
    let finished = jobs::get(&db, &id).await.expect("get").expect("job");
    assert_eq!((finished.state, finished.attempts), (JobState::Succeeded, 2));
    assert!(!jobs::succeed(&db, &id, "dead-worker").await.expect("late"), "the dead worker's late result is refused");
}
on_both_engines!(an_orphaned_job_runs_again_after_its_lease);

async fn failures_retry_with_backoff_then_fail(engine: Engine) {
    let (_guard, db) = database(engine).await;
    let flaky_id = jobs::enqueue(&db, &job("denoise", &json!({ "n": 1 }), None)).await.expect("enqueue").expect("new");
    let calls = Arc::new(Mutex::new(0));
    let counter = calls.clone();
    let flaky: Handler = Arc::new(move |_| {
        let counter = counter.clone();
        Box::pin(async move {
            let mut calls = counter.lock().expect("lock");
            *calls += 1;
            if *calls < 2 { anyhow::bail!("transient failure") } else { Ok(()) }
        })
    });
    let worker = Worker::new(db.clone(), fast()).register("denoise", flaky);
    assert!(worker.run_once().await.expect("run"));
    let after_failure = jobs::get(&db, &flaky_id).await.expect("get").expect("job");
    assert_eq!(after_failure.state, JobState::Queued);
    assert!(after_failure.run_after_ms > jobs::now_ms(), "retried after a backoff");
    assert!(!worker.run_once().await.expect("run"), "not before the backoff");
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(worker.run_once().await.expect("run"));
    assert_eq!(jobs::get(&db, &flaky_id).await.expect("get").expect("job").state, JobState::Succeeded);

    let empty = json!({});
    let doomed = NewJob { max_attempts: 1, ..job("denoise", &empty, None) };
    let doomed_id = jobs::enqueue(&db, &doomed).await.expect("enqueue").expect("new");
    let always: Handler = Arc::new(|_| Box::pin(async { anyhow::bail!("the series cannot be made into a volume") }));
    let worker = Worker::new(db.clone(), fast()).register("denoise", always);
    assert!(worker.run_once().await.expect("run"));
    let failed = jobs::get(&db, &doomed_id).await.expect("get").expect("job");
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some("the series cannot be made into a volume"));
}
on_both_engines!(failures_retry_with_backoff_then_fail);

async fn denoise_jobs_come_before_fine_tune_jobs(engine: Engine) {
    let (_guard, db) = database(engine).await;
    jobs::enqueue(&db, &job("fine_tune", &json!({}), None)).await.expect("enqueue");
    tokio::time::sleep(Duration::from_millis(5)).await;
    jobs::enqueue(&db, &job("denoise", &json!({}), None)).await.expect("enqueue");
    let first = jobs::claim(&db, "w", &["denoise", "fine_tune"], 1000).await.expect("claim").expect("job");
    assert_eq!(first.kind, "denoise");
    let only_fine_tune = jobs::claim(&db, "w", &["denoise"], 1000).await.expect("claim");
    assert!(only_fine_tune.is_none(), "a worker claims only kinds it runs");
}
on_both_engines!(denoise_jobs_come_before_fine_tune_jobs);
