//! The builtin `command` profile (placeholder body, replaced by the full implementation).
use kazi_sdk::prelude::*;

struct CommandProfile;

impl Profile for CommandProfile {
    fn describe() -> ProfileDescription {
        ProfileDescription {
            id: "command".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        }
    }
    fn invocation(req: Request) -> Result<Invocation, String> {
        let (program, args) = req.run.split_first().ok_or("`[agent] run` is empty")?;
        Ok(Invocation {
            program: program.clone(),
            args: args.to_vec(),
            stdin: Some(req.prompt),
            prompt_file: true,
            ..Default::default()
        })
    }
    fn parse(exit_code: Option<i32>, stdout: &str, _stderr: &str) -> Report {
        Report {
            result: Some(stdout.to_owned()),
            error: (exit_code != Some(0)).then(|| format!("exit {exit_code:?}")),
            ..Default::default()
        }
    }
}

export_profile!(CommandProfile);
