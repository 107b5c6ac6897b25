//! Adversarial guest: `describe` never returns. Loading it must end at the load
//! deadline with a message that names it.
use kazi_sdk::prelude::*;

struct DescribeLoop;

impl Predicate for DescribeLoop {
    fn describe() -> Description {
        let mut n: u64 = 0;
        loop {
            n = std::hint::black_box(n.wrapping_add(1));
        }
    }

    fn evaluate(_config: Config, _cx: &Context) -> Result<Verdict> {
        Ok(Verdict::pass("evaluated"))
    }
}

export_predicate!(DescribeLoop);
