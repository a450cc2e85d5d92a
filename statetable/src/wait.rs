//! [`until`]: waits on a [`Notify`] for a condition, without missing a wakeup.

use tokio::sync::Notify;

/// Returns once `ready()` holds, checking it again at each notification of `notify`. The
/// notification is armed before the check, so one sent between the check and the wait is not
/// lost (with `notify_waiters`, which stores no permit, it would be).
pub(crate) async fn until(notify: &Notify, ready: impl Fn() -> bool) {
    loop {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if ready() {
            return;
        }
        notified.await;
    }
}
