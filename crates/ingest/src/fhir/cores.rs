//! Work shared out over the machine's cores.

/// `f` of each of `0..n`, in order, worked out on every core (up to four) when there is
/// enough to be worth it: it serves lookups made once for each of hundreds of thousands of
/// references, while the other cores would otherwise wait.
pub(crate) fn on_cores<T: Send>(n: usize, f: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let cores = std::thread::available_parallelism()
        .map_or(1, |c| c.get())
        .clamp(1, 4);
    if cores == 1 || n < 20_000 {
        return (0..n).map(f).collect();
    }
    let size = n.div_ceil(cores);
    std::thread::scope(|scope| {
        let f = &f;
        let parts: Vec<_> = (0..cores)
            .map(|c| scope.spawn(move || (c * size..((c + 1) * size).min(n)).map(f).collect()))
            .collect();
        let mut all = Vec::with_capacity(n);
        for part in parts {
            match part.join() {
                Ok(part) => all.extend::<Vec<T>>(part),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        all
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn results_come_back_in_order_however_many_cores() {
        for n in [0, 1, 19_999, 20_000, 50_001] {
            let got = super::on_cores(n, |i| i * 3);
            assert_eq!(got, (0..n).map(|i| i * 3).collect::<Vec<_>>(), "n = {n}");
        }
    }
}
