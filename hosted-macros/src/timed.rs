//! `#[timed]`: an `async fn` run on a schedule (fixed rate, fixed delay or cron), each tick with
//! its parameters injected.
//!
//! Three phases: [`Args`] parses the arguments, `validate` checks the schedule and policies into
//! a [`Timer`] model and the function into a [`HostedFn`], `emit` writes the tokens.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::{Ident, Item, ItemFn, LitStr};

use crate::args::{Arg, Args, Attribute};
use crate::diagnostics::{Errors, with_item};
use crate::service_args::{self, ServiceArgs};
use crate::service_fn::ServiceFn;
use crate::signature::{self, HostedFn};
use crate::{cron, duration, values};

const ATTRIBUTE: &str = "timed";

/// How the arguments read in messages; a lone string was probably the schedule.
const ARGUMENTS: Attribute = Attribute {
    name: ATTRIBUTE,
    positional: |literal| match literal {
        syn::Lit::Str(text) if text.value().trim().contains(' ') => Some("cron"),
        syn::Lit::Str(_) => Some("every"),
        _ => None,
    },
};

pub(crate) const TIMER_KEYS: &[&str] = &[
    "every",
    "delay",
    "cron",
    "time_zone",
    "initial_delay",
    "jitter",
    "overlap",
    "max_concurrent",
    "missed",
    "once_per_cluster",
    "backfill",
];
const OVERLAPS: &[&str] = &["skip", "coalesce", "concurrent"];
const MISSED: &[&str] = &["burst", "delay", "skip"];

/// The schedule and policies, checked.
struct Timer {
    schedule: Schedule,
    time_zone: Option<LitStr>,
    initial_delay: Option<Duration>,
    jitter: Option<Duration>,
    overlap: Option<&'static str>,
    max_concurrent: Option<u32>,
    missed: Option<&'static str>,
}

enum Schedule {
    Every(Duration),
    Delay(Duration),
    Cron(LitStr),
    /// Missing or wrong: reported, and the item emitted without the service.
    Invalid,
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        // Not an item rustc can read either: let rustc report it.
        Err(_) => return item,
    };
    let Item::Fn(function) = parsed else {
        let error = syn::Error::new(
            Span::call_site(),
            "`#[timed]` applies to an `async fn`: the function the timer runs on each tick",
        );
        return with_item(&error, parsed);
    };
    let mut errors = Errors::new();
    let keys: Vec<&str> = service_args::KEYS
        .iter()
        .chain(TIMER_KEYS)
        .copied()
        .collect();
    // Whether the arguments read at all: a misspelled `every` should not also be reported as
    // a missing schedule.
    let mut argument_errors = Errors::new();
    let mut parsed = Args::parse(args, ARGUMENTS, &keys, &mut argument_errors);
    let arguments_read = match argument_errors.finish() {
        Ok(()) => true,
        Err(error) => {
            errors.push(error);
            false
        }
    };
    let cluster = take_cluster(&mut parsed, &mut errors);
    let timer = validate(&mut parsed, arguments_read, &mut errors);
    if let Some(cluster) = &cluster {
        check_cluster(cluster, &timer, &mut errors);
    }
    let service = ServiceArgs::take(&mut parsed, &mut errors);
    service.refuse_after_self(&function.sig.ident, &mut errors);
    let hosted_fn = signature::check(&function.sig, ATTRIBUTE, &mut errors);
    match errors.finish() {
        Ok(()) => emit(&service, &timer, cluster.as_ref(), &hosted_fn, &function),
        Err(error) if hosted_fn.is_method => with_item(&error, &function),
        Err(error) => {
            let mut tokens = with_item(&error, &function);
            tokens.extend(service_fn(&service, &hosted_fn, &function).marker());
            tokens
        }
    }
}

/// Checks the timer's arguments against each other; each mistake at its literal.
fn validate(args: &mut Args, arguments_read: bool, errors: &mut Errors) -> Timer {
    let mut schedules: Vec<(Arg, &str)> = ["every", "delay", "cron"]
        .into_iter()
        .filter_map(|key| args.take(key).map(|arg| (arg, key)))
        .collect();
    let schedule = match schedules.len() {
        0 if !arguments_read => Schedule::Invalid,
        0 => {
            errors.at(
                Span::call_site(),
                "`#[timed]` needs a schedule: `every = \"5s\"` (fixed rate), `delay = \"5s\"` \
                 (fixed delay) or `cron = \"0 */5 * * * *\"` (seconds first)",
            );
            Schedule::Invalid
        }
        1 => {
            let (arg, key) = schedules.remove(0);
            read_schedule(&arg, key, errors)
        }
        _ => {
            let first = schedules[0].1;
            for (arg, key) in &schedules[1..] {
                errors.at(
                    arg.key.span(),
                    format!(
                        "`{key}` conflicts with `{first}`: a timer has one schedule; keep one of \
                         `every`, `delay` or `cron`"
                    ),
                );
            }
            Schedule::Invalid
        }
    };
    let is_cron = matches!(schedule, Schedule::Cron(_))
        || (matches!(schedule, Schedule::Invalid)
            && schedules.iter().any(|(_, key)| *key == "cron"));

    let time_zone = args.take("time_zone").and_then(|arg| {
        read_time_zone(
            &arg,
            is_cron || matches!(schedule, Schedule::Invalid),
            errors,
        )
    });
    let initial_delay = args
        .take("initial_delay")
        .and_then(|arg| errors.take(values::duration("initial_delay", &arg.value)))
        .map(|(value, _)| value);
    let jitter = args
        .take("jitter")
        .and_then(|arg| read_jitter(&arg, &schedule, errors));
    let (overlap, max_concurrent, missed) = read_policies(args, &schedule, errors);
    Timer {
        schedule,
        time_zone,
        initial_delay,
        jitter,
        overlap,
        max_concurrent,
        missed,
    }
}

fn read_time_zone(arg: &Arg, cron: bool, errors: &mut Errors) -> Option<LitStr> {
    if !cron {
        errors.at(
            arg.key.span(),
            "`time_zone` applies only to a `cron` schedule; `every` and `delay` do not depend on the wall clock",
        );
    }
    let zone = errors.take(values::non_empty_string("time_zone", &arg.value))?;
    // `hosted`'s `time-zones` feature turns on this crate's: without it, the time-zone
    // database is not compiled in.
    if cfg!(not(feature = "time-zones")) {
        errors.at(
            zone.span(),
            "`time_zone` needs the `time-zones` feature of `hosted`, without which cron schedules \
             run in UTC: enable it in Cargo.toml, `hosted = { version = \"0.1\", features = [\"time-zones\"] }`",
        );
    }
    let name = zone.value();
    let plausible = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+-".contains(c))
        && !name.starts_with('/')
        && !name.ends_with('/');
    if !plausible {
        errors.at(
            zone.span(),
            format!("`{name}` is not a time zone name; expected an IANA name like `\"Europe/Paris\"` or `\"UTC\"`"),
        );
    }
    Some(zone)
}

fn read_jitter(arg: &Arg, schedule: &Schedule, errors: &mut Errors) -> Option<Duration> {
    let (jitter, literal) = errors.take(values::duration("jitter", &arg.value))?;
    if jitter.is_zero() {
        errors.at(
            literal.span(),
            "`jitter` must be greater than zero; remove it, or give a bound like `\"500ms\"`",
        );
    } else if let Schedule::Every(period) = schedule
        && jitter >= *period
    {
        errors.at(
            literal.span(),
            format!(
                "`jitter` ({}) must be shorter than the period `every`, or ticks would reorder",
                literal.value()
            ),
        );
    }
    Some(jitter)
}

/// `overlap`, `max_concurrent` and `missed`, each checked against the schedule.
fn read_policies(
    args: &mut Args,
    schedule: &Schedule,
    errors: &mut Errors,
) -> (Option<&'static str>, Option<u32>, Option<&'static str>) {
    let overlap = args.take("overlap").and_then(|arg| {
        if let Schedule::Delay(_) = schedule {
            errors.at(
                arg.key.span(),
                "`overlap` conflicts with `delay`: a fixed delay never overlaps, the next tick \
                 is due only after the previous one ended; remove `overlap`, or use `every`",
            );
        }
        errors
            .take(values::choice("overlap", &arg.value, OVERLAPS))
            .map(|(word, _)| word)
    });
    let max_concurrent = args.take("max_concurrent").and_then(|arg| {
        if overlap != Some("concurrent") {
            errors.at(
                arg.key.span(),
                "`max_concurrent` applies only to `overlap = \"concurrent\"`",
            );
        }
        let limit = errors.take(values::u32("max_concurrent", &arg.value))?;
        if limit == 0 {
            errors.spanned(&arg.value, "`max_concurrent` must be at least 1");
        }
        Some(limit)
    });
    let missed = args.take("missed").and_then(|arg| {
        if matches!(schedule, Schedule::Delay(_) | Schedule::Cron(_)) {
            errors.at(
                arg.key.span(),
                "`missed` applies only to a fixed-rate `every` schedule: a fixed delay cannot \
                 fall behind, and a late cron timer runs once for the fire times it missed",
            );
        }
        errors
            .take(values::choice("missed", &arg.value, MISSED))
            .map(|(word, _)| word)
    });
    (overlap, max_concurrent, missed)
}

fn read_schedule(arg: &Arg, key: &str, errors: &mut Errors) -> Schedule {
    if key == "cron" {
        let Some(expression) = errors.take(values::string("cron", &arg.value)) else {
            return Schedule::Invalid;
        };
        return match cron::check(&expression.value()) {
            Ok(()) => Schedule::Cron(expression),
            Err(message) => {
                errors.at(
                    expression.span(),
                    format!("invalid cron expression: {message}"),
                );
                Schedule::Invalid
            }
        };
    }
    if let Ok(literal) = values::string(key, &arg.value)
        && literal.value().trim_start().starts_with('-')
    {
        errors.at(
            literal.span(),
            format!("`{key}` cannot be negative; {}", duration::EXPECTED),
        );
        return Schedule::Invalid;
    }
    let Some((period, literal)) = errors.take(values::duration(key, &arg.value)) else {
        return Schedule::Invalid;
    };
    if period.is_zero() {
        errors.at(
            literal.span(),
            format!("`{key}` must be greater than zero; {}", duration::EXPECTED),
        );
        return Schedule::Invalid;
    }
    if key == "every" {
        Schedule::Every(period)
    } else {
        Schedule::Delay(period)
    }
}

/// The `TimerOptions` expression, `const`-evaluable.
fn emit_options(private: &TokenStream, timer: &Timer) -> TokenStream {
    let mut options = match &timer.schedule {
        Schedule::Every(period) => {
            let period = duration::constructor(*period);
            quote!(#private::TimerOptions::every(#period))
        }
        Schedule::Delay(delay) => {
            let delay = duration::constructor(*delay);
            quote!(#private::TimerOptions::delay(#delay))
        }
        Schedule::Cron(expression) => quote!(#private::TimerOptions::cron(#expression)),
        Schedule::Invalid => unreachable!("emitted only without errors"),
    };
    if let Some(zone) = &timer.time_zone {
        options.extend(quote!(.with_time_zone(#zone)));
    }
    if let Some(delay) = timer.initial_delay {
        let delay = duration::constructor(delay);
        options.extend(quote!(.with_initial_delay(#delay)));
    }
    if let Some(jitter) = timer.jitter {
        let jitter = duration::constructor(jitter);
        options.extend(quote!(.with_jitter(#jitter)));
    }
    if let Some(overlap) = timer.overlap {
        let variant = Ident::new(&variant(overlap), Span::call_site());
        options.extend(quote!(.with_overlap(#private::Overlap::#variant)));
    }
    if let Some(limit) = timer.max_concurrent {
        options.extend(quote!(.with_max_concurrent(#limit)));
    }
    if let Some(missed) = timer.missed {
        let variant = Ident::new(&variant(missed), Span::call_site());
        options.extend(quote!(.with_missed(#private::Missed::#variant)));
    }
    options
}

/// `"coalesce"` → `Coalesce`.
fn variant(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `once_per_cluster` and its `backfill` window.
struct Cluster {
    /// The `once_per_cluster` key.
    key: Span,
    backfill: Option<Duration>,
}

fn take_cluster(args: &mut Args, errors: &mut Errors) -> Option<Cluster> {
    let on = args.take("once_per_cluster").and_then(|arg| {
        let on = errors.take(values::bool("once_per_cluster", &arg.value))?;
        on.then(|| arg.key.span())
    });
    let backfill = args.take("backfill");
    let Some(key) = on else {
        if let Some(arg) = backfill {
            errors.at(
                arg.key.span(),
                "`backfill` applies only to a once-per-cluster timer; add `once_per_cluster`",
            );
        }
        return None;
    };
    let backfill = backfill
        .and_then(|arg| errors.take(values::duration("backfill", &arg.value)))
        .and_then(|(window, literal)| {
            if window.is_zero() {
                errors.at(
                    literal.span(),
                    "`backfill` must be greater than zero; leave it out to skip missed ticks",
                );
                return None;
            }
            Some(window)
        });
    Some(Cluster { key, backfill })
}

/// What a once-per-cluster timer cannot combine with, reported at `once_per_cluster`.
fn check_cluster(cluster: &Cluster, timer: &Timer, errors: &mut Errors) {
    if matches!(timer.schedule, Schedule::Delay(_)) {
        errors.at(
            cluster.key,
            "`once_per_cluster` needs an `every` or `cron` schedule: a fixed `delay` follows \
             one replica's runs, not the cluster's clock",
        );
    }
    for (given, key) in [
        (timer.initial_delay.is_some(), "initial_delay"),
        (timer.jitter.is_some(), "jitter"),
        (timer.overlap.is_some(), "overlap"),
        (timer.max_concurrent.is_some(), "max_concurrent"),
        (timer.missed.is_some(), "missed"),
    ] {
        if given {
            errors.at(
                cluster.key,
                format!(
                    "`once_per_cluster` does not take `{key}`: its ticks are the schedule's \
                     occurrences on the database's clock, run one at a time; missed ticks are \
                     skipped, or run with `backfill = \"10m\"`"
                ),
            );
        }
    }
}

fn emit(
    service: &ServiceArgs,
    timer: &Timer,
    cluster: Option<&Cluster>,
    function: &HostedFn,
    item: &ItemFn,
) -> TokenStream {
    let service = service_fn(service, function, item);
    let private = ServiceFn::private();
    let options = emit_options(&private, timer);
    let body = service.body(&[]);
    let runner = quote! {
        const __HOSTED_OPTIONS: #private::TimerOptions = #options;

        async fn __hosted_tick(
            __hosted_cx: #private::RunContext,
        ) -> ::core::result::Result<(), #private::BoxError> {
            #body
        }
    };
    let name = service.name();
    let mut checks = TokenStream::new();
    let descriptor = if let Some(cluster) = cluster {
        let key = cluster.key;
        checks.extend(quote_spanned!(key=> #private::assert_durable::<()>();));
        let backfill = cluster.backfill.map_or_else(
            || quote!(::core::option::Option::None),
            |window| {
                let window = duration::constructor(window);
                quote!(::core::option::Option::Some(#window))
            },
        );
        quote! {
            #private::cluster_timed(#name, __HOSTED_OPTIONS, #backfill, __hosted_tick)
        }
    } else {
        quote! {
            #private::ServiceDescriptor::timed(#name, __HOSTED_OPTIONS, __hosted_tick)
        }
    };
    service.emit(&[], &runner, &descriptor, &checks)
}

fn service_fn<'a>(
    args: &'a ServiceArgs,
    function: &'a HostedFn,
    item: &'a ItemFn,
) -> ServiceFn<'a> {
    ServiceFn {
        args,
        function,
        item,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_words_name_variants() {
        assert_eq!(variant("coalesce"), "Coalesce");
        assert_eq!(variant("skip"), "Skip");
    }
}
