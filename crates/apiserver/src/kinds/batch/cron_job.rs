//! CronJob (`cronjobs`, `cj`): concurrencyPolicy Allow, suspend false, history limits 3/1, a schedule
//! check, and the SCHEDULE/TIMEZONE/SUSPEND/ACTIVE/LAST SCHEDULE printer.

use k8s_openapi::api::batch::v1::CronJob as Object;
use serde_json::{Value, json};
use skiff_k8s_core::status::FieldError;

use crate::kinds::core::pod_template::{
    containers_cell, default_template, images_cell, selector_string, validate_template,
};
use crate::kinds::typed::{
    Kind, age_cell, age_column, arr, child_map, col, default_field, name_cell, name_column, s,
};
use crate::kinds::validation::{non_negative, not_supported};
use crate::registry::strategy::Column;

pub(crate) struct CronJob;

impl Kind for CronJob {
    type Object = Object;
    const SHORT_NAMES: &'static [&'static str] = &["cj"];
    const CATEGORIES: &'static [&'static str] = &["all"];
    const STATUS: bool = true;
    const GENERATION: bool = true;

    fn defaults(obj: &mut Value) {
        let spec = child_map(obj, "spec");
        default_field(spec, "concurrencyPolicy", "Allow");
        default_field(spec, "suspend", false);
        default_field(spec, "successfulJobsHistoryLimit", 3);
        default_field(spec, "failedJobsHistoryLimit", 1);
        default_template(obj, "/spec/jobTemplate/spec/template");
    }

    fn validate(obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let sched = s(obj, "/spec/schedule");
        if sched.is_empty() {
            errs.push(FieldError::required("spec.schedule", ""));
        } else if let Err(e) = check_schedule(sched) {
            errs.push(FieldError::invalid("spec.schedule", json!(sched), e));
        }
        let cp = obj
            .pointer("/spec/concurrencyPolicy")
            .unwrap_or(&Value::Null);
        if let Some(c) = cp.as_str()
            && !["Allow", "Forbid", "Replace"].contains(&c)
        {
            errs.push(not_supported(
                "spec.concurrencyPolicy",
                cp,
                &["Allow", "Forbid", "Replace"],
            ));
        }
        errs.extend(non_negative(
            obj,
            "/spec/successfulJobsHistoryLimit",
            "spec.successfulJobsHistoryLimit",
        ));
        errs.extend(non_negative(
            obj,
            "/spec/failedJobsHistoryLimit",
            "spec.failedJobsHistoryLimit",
        ));
        errs.extend(non_negative(
            obj,
            "/spec/startingDeadlineSeconds",
            "spec.startingDeadlineSeconds",
        ));
        match obj
            .pointer("/spec/jobTemplate/spec/template")
            .filter(|t| !t.is_null())
        {
            Some(t) => errs.extend(validate_template(t, "spec.jobTemplate.spec.template")),
            None => errs.push(FieldError::required("spec.jobTemplate.spec.template", "")),
        }
        errs
    }

    fn columns() -> Vec<Column> {
        vec![
            name_column(),
            col(
                "Schedule",
                "string",
                "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron.",
                0,
            ),
            col(
                "Timezone",
                "string",
                "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this will default to the time zone of the kube-controller-manager process. The set of valid time zone names and the time zone offset is loaded from the system-wide time zone database by the API server during CronJob validation and the controller manager during execution. If no system-wide time zone database can be found a bundled version of the database is used instead. If the time zone name becomes invalid during the lifetime of a CronJob or due to a change in host configuration, the controller will stop creating new new Jobs and will create a system event with the reason UnknownTimeZone. More information can be found in https://kubernetes.io/docs/concepts/workloads/controllers/cron-jobs/#time-zones",
                0,
            ),
            col(
                "Suspend",
                "boolean",
                "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions.  Defaults to false.",
                0,
            ),
            col(
                "Active",
                "integer",
                "A list of pointers to currently running jobs.",
                0,
            ),
            col(
                "Last Schedule",
                "string",
                "Information when was the last time the job was successfully scheduled.",
                0,
            ),
            age_column(),
            col(
                "Containers",
                "string",
                "Names of each container in the template.",
                1,
            ),
            col(
                "Images",
                "string",
                "Images referenced by each container in the template.",
                1,
            ),
            col(
                "Selector",
                "string",
                "A label query over pods that should match the pod count. Normally, the system sets this field for you. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
                1,
            ),
        ]
    }

    fn row(obj: &Value, now: jiff::Timestamp) -> Vec<Value> {
        let last = obj
            .pointer("/status/lastScheduleTime")
            .and_then(Value::as_str)
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .map(|t| crate::registry::human_duration((now.as_second() - t.as_second()).max(0)))
            .unwrap_or_else(|| "<none>".to_string());
        let tz = s(obj, "/spec/timeZone");
        vec![
            name_cell(obj),
            Value::from(s(obj, "/spec/schedule")),
            Value::from(if tz.is_empty() { "<none>" } else { tz }),
            Value::from(
                obj.pointer("/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            ),
            Value::from(arr(obj, "/status/active").len()),
            Value::from(last),
            age_cell(obj, now),
            containers_cell(obj, "/spec/jobTemplate/spec/template/spec"),
            images_cell(obj, "/spec/jobTemplate/spec/template/spec"),
            Value::from(selector_string(
                obj.pointer("/spec/jobTemplate/spec/selector"),
            )),
        ]
    }
}

/// Five standard cron fields or a `@` descriptor, with each field's characters and ranges checked.
fn check_schedule(sched: &str) -> Result<(), String> {
    let sched = sched.trim();
    let sched = match sched
        .strip_prefix("TZ=")
        .or_else(|| sched.strip_prefix("CRON_TZ="))
    {
        Some(_) => {
            return Err(
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".to_string(),
            );
        }
        None => sched,
    };
    if sched.starts_with('@') {
        return match sched {
            "@yearly" | "@annually" | "@monthly" | "@weekly" | "@daily" | "@midnight"
            | "@hourly" => Ok(()),
            _ if sched.starts_with("@every ") => Ok(()),
            _ => Err(format!("unrecognized descriptor: {sched}")),
        };
    }
    let fields: Vec<&str> = sched.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: {sched}",
            fields.len()
        ));
    }
    let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    for (f, (lo, hi)) in fields.iter().zip(ranges) {
        for part in f.split(',') {
            let (range, step) = part.split_once('/').unwrap_or((part, "1"));
            if step.parse::<u32>().map_or(true, |s| s == 0) {
                return Err(format!("failed to parse int from {step}"));
            }
            if range == "*" || range == "?" {
                continue;
            }
            for n in range.split('-') {
                let named = n.len() == 3 && n.chars().all(|c| c.is_ascii_alphabetic());
                if named {
                    continue;
                }
                let v: u32 = n
                    .parse()
                    .map_err(|_| format!("failed to parse int from {n}"))?;
                if v < lo || v > hi {
                    return Err(format!("end of range ({v}) above maximum ({hi}): {part}"));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::typed::Typed;
    use crate::registry::strategy::Strategy;

    #[test]
    fn defaults_schedule_and_row() {
        let st = Typed::<CronJob>::new();
        let mut c = json!({"metadata": {"name": "hello", "namespace": "d"}, "spec": {"schedule": "*/5 * * * *",
            "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}});
        st.prepare_for_create(&mut c);
        assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
        assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
        assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
        assert!(st.validate(&c).is_empty(), "{:?}", st.validate(&c));
        let row = st.row(&c, jiff::Timestamp::now());
        assert_eq!(
            row[1..6],
            [
                json!("*/5 * * * *"),
                json!("<none>"),
                json!(false),
                json!(0),
                json!("<none>")
            ]
        );
        c["spec"]["schedule"] = json!("61 * * * *");
        assert_eq!(st.validate(&c)[0].path, "spec.schedule");
        assert!(check_schedule("@hourly").is_ok());
        assert!(check_schedule("0 0 * * MON").is_ok());
    }
}
