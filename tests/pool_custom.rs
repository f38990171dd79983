//! A pool written outside the crate implements AbstractSessionPool and gets SessionCheckout
//! and `session()` for free, also as a shared trait object and inside spawned tasks.
mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use session_pool::prelude::*;
use session_pool::{Database, Error, PoolStats, PooledSession, PutError, Result, Session};

/// Keeps at most one idle session; creates one when it has none.
#[derive(Default)]
struct OneIdle {
    database: OnceLock<Database>,
    idle: Mutex<Option<Session>>,
    labels: BTreeMap<String, String>,
}

#[async_trait]
impl AbstractSessionPool for OneIdle {
    fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }
    fn database_role(&self) -> Option<&str> {
        None
    }
    async fn bind(&self, database: &Database) -> Result<()> {
        let _ = self.database.set(database.clone());
        Ok(())
    }
    async fn get(&self, _timeout: Option<Duration>) -> Result<PooledSession> {
        if let Some(s) = self.idle.lock().take() {
            return Ok(s.into());
        }
        let mut s = self.database.get().ok_or(Error::NotBound)?.session();
        s.create().await?;
        Ok(s.into())
    }
    fn put(&self, session: PooledSession) -> std::result::Result<(), PutError> {
        let mut idle = self.idle.lock();
        if idle.is_some() {
            return Err(PutError::new(session, Error::PoolFull { size: 1 }));
        }
        *idle = Some(session.detach());
        Ok(())
    }
    async fn clear(&self) -> Result<()> {
        let s = self.idle.lock().take();
        if let Some(mut s) = s {
            s.delete().await?;
        }
        Ok(())
    }
    async fn close(&self) {
        let _ = self.clear().await;
    }
    fn stats(&self) -> PoolStats {
        PoolStats::default()
    }
}

#[tokio::test]
async fn a_custom_pool_works_with_checkouts() {
    let (db, _dir) = common::sqlite().await;
    let pool = Arc::new(OneIdle::default());
    assert!(matches!(pool.get(None).await, Err(Error::NotBound)));
    pool.bind(&db).await.unwrap();
    let id = {
        let mut s = pool.session().await.unwrap();
        s.ping().await.unwrap();
        s.session_id().unwrap().to_owned()
    };
    // The checkout put it back; the next one gets the same session.
    let s = pool.session().await.unwrap();
    assert_eq!(s.session_id().unwrap(), id);
    drop(s);
    // Also as a shared trait object, from inside a task.
    let dyn_pool: Arc<dyn AbstractSessionPool> = pool.clone();
    let seen = tokio::spawn(async move {
        let c = dyn_pool.session().await.unwrap();
        c.session_id().map(str::to_owned)
    })
    .await
    .unwrap();
    assert_eq!(seen.as_deref(), Some(id.as_str()));
    assert!(pool.idle.lock().is_some(), "the guard went home");
}
