//! A pool written outside the crate implements AbstractSessionPool and gets SessionCheckout
//! and `session()` for free.
mod common;

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use session_pool::pool::PutError;
use session_pool::prelude::*;
use session_pool::{Database, Error, PoolStats, Result, Session};

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
    async fn get(&self, _timeout: Option<Duration>) -> Result<Session> {
        if let Some(s) = self.idle.lock().take() {
            return Ok(s);
        }
        let mut s = self.database.get().ok_or(Error::NotBound)?.session();
        s.create().await?;
        Ok(s)
    }
    fn put(&self, session: Session) -> std::result::Result<(), PutError> {
        let mut idle = self.idle.lock();
        if idle.is_some() {
            return Err(PutError {
                session,
                error: Error::PoolFull { size: 1 },
            });
        }
        *idle = Some(session);
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
    let pool = OneIdle::default();
    assert!(matches!(pool.get(None).await, Err(Error::NotBound)));
    pool.bind(&db).await.unwrap();
    let id = {
        let mut s = pool.session(None).await.unwrap();
        s.ping().await.unwrap();
        s.session_id().unwrap().to_owned()
    };
    // The checkout put it back; the next one gets the same session.
    let s = pool.session(None).await.unwrap();
    assert_eq!(s.session_id().unwrap(), id);
    // Also as a trait object.
    let dyn_pool: &dyn AbstractSessionPool = &pool;
    drop(s);
    let c = session_pool::SessionCheckout::new(dyn_pool, dyn_pool.get(None).await.unwrap());
    assert_eq!(c.session_id().unwrap(), id);
}
