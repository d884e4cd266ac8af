//! Network namespaces made ahead of time. Creating one (unshare + loopback up) takes 2-5 ms under the
//! kernel's rtnl lock, so N branches made at once would wait for each other; a few spare namespaces,
//! refilled in the background, take that off the path of a restore.

use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};

use crate::spawner::{SpawnError, SpawnerClient};

pub struct NetnsPool {
    spawner: Arc<SpawnerClient>,
    spare: Mutex<Vec<OwnedFd>>,
    target: usize,
    refilling: Mutex<bool>,
}

impl NetnsPool {
    pub fn new(spawner: Arc<SpawnerClient>, target: usize) -> Arc<NetnsPool> {
        let pool = Arc::new(NetnsPool { spawner, spare: Mutex::new(Vec::new()), target, refilling: Mutex::new(false) });
        pool.refill();
        pool
    }

    /// A fresh network namespace (lo up): a spare one when there is, else made now.
    pub async fn take(self: &Arc<Self>) -> Result<OwnedFd, SpawnError> {
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).pop();
        self.refill();
        match spare {
            Some(fd) => Ok(fd),
            None => self.spawner.new_netns().await,
        }
    }

    pub fn spare(&self) -> usize {
        self.spare.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    fn refill(self: &Arc<Self>) {
        {
            let mut busy = self.refilling.lock().unwrap_or_else(|p| p.into_inner());
            if *busy {
                return;
            }
            *busy = true;
        }
        let pool = self.clone();
        tokio::spawn(async move {
            while pool.spare() < pool.target {
                match pool.spawner.new_netns().await {
                    Ok(fd) => pool.spare.lock().unwrap_or_else(|p| p.into_inner()).push(fd),
                    Err(e) => {
                        crate::log!("cannot make a spare network namespace: {e}");
                        break;
                    }
                }
            }
            *pool.refilling.lock().unwrap_or_else(|p| p.into_inner()) = false;
        });
    }
}
