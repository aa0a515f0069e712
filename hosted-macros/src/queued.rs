//! `#[queued]`: an `async fn` whose first parameter is the item becomes a queued service, a
//! bounded queue of that item type drained by workers calling the function.
//!
//! Three phases: [`Args`] parses the arguments, [`validate`] checks them against the function
//! into a [`Model`], [`emit`] writes the tokens.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{ToTokens as _, quote, quote_spanned};
use syn::spanned::Spanned as _;
use syn::{Expr, FnArg, Item, ItemFn, LitStr, Pat, Type};

use crate::args::{Arg, Args, Attribute};
use crate::diagnostics::{Errors, with_item};
use crate::duration;
use crate::service_args::{self, ServiceArgs};
use crate::service_fn::ServiceFn;
use crate::signature::{self, HostedFn};
use crate::values;

const ATTRIBUTE: &str = "queued";

/// How the arguments read in messages; a lone integer was probably the capacity.
const ARGUMENTS: Attribute = Attribute {
    name: ATTRIBUTE,
    positional: |literal| matches!(literal, syn::Lit::Int(_)).then_some("capacity"),
};

/// The keys `#[queued]` reads besides the shared service keys.
pub(crate) const QUEUE_KEYS: &[&str] = &[
    "capacity",
    "full_mode",
    "workers",
    "retries",
    "retry_backoff",
    "retry_max_backoff",
    "timeout",
    "dead_letter",
    "durable",
];

const FULL_MODES: &[&str] = &[
    "wait",
    "reject",
    "drop_oldest",
    "drop_newest",
    "drop_incoming",
];
const DEAD_LETTER_WORDS: &[&str] = &["log", "log_without_item"];
/// The seed's `QueueCapacity` default.
const DEFAULT_CAPACITY: u32 = 100;
/// `QueueOptions::DEFAULT_RETRY_MAX_BACKOFF`, for checking a lone `retry_backoff` against it.
const DEFAULT_RETRY_MAX_BACKOFF: Duration = Duration::from_secs(30);

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let parsed: Item = match syn::parse2(item.clone()) {
        Ok(parsed) => parsed,
        // Not an item rustc can read either: let rustc report it.
        Err(_) => return item,
    };
    let Item::Fn(function) = parsed else {
        let error = syn::Error::new_spanned(
            first_token(&parsed),
            "`#[queued]` applies to an `async fn` whose first parameter is the queue's item: \
             `async fn handle(item: Email, ...)`",
        );
        return with_item(&error, parsed);
    };
    let mut errors = Errors::new();
    let model = validate(args, &function, &mut errors);
    match errors.finish() {
        Ok(()) => emit(&model, &function),
        // A method sits in an impl or a trait, where the marker and key items cannot go.
        Err(error) if model.function.is_method => with_item(&error, &function),
        Err(error) => {
            let mut tokens = with_item(&error, &function);
            tokens.extend(service_fn(&model, &function).marker());
            tokens
        }
    }
}

/// The tokens to point at when the attribute is on the wrong kind of item.
fn first_token(item: &Item) -> TokenStream {
    match item {
        Item::Struct(item) => item.struct_token.to_token_stream(),
        Item::Enum(item) => item.enum_token.to_token_stream(),
        Item::Const(item) => item.const_token.to_token_stream(),
        Item::Static(item) => item.static_token.to_token_stream(),
        Item::Trait(item) => item.trait_token.to_token_stream(),
        Item::Impl(item) => item.impl_token.to_token_stream(),
        Item::Type(item) => item.type_token.to_token_stream(),
        Item::Mod(item) => item.mod_token.to_token_stream(),
        other => other.to_token_stream(),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Everything the generated code needs, checked.
struct Model {
    args: ServiceArgs,
    queue: QueueArgs,
    /// The function, without its item parameter.
    function: HostedFn,
    /// The item's type; `None` when missing or unusable (an error was recorded).
    item: Option<Type>,
}

/// The queue's own arguments, checked.
struct QueueArgs {
    capacity: u32,
    full_mode: &'static str,
    workers: u32,
    retries: u32,
    retry_backoff: Option<Duration>,
    retry_max_backoff: Option<Duration>,
    timeout: Option<Duration>,
    dead_letter: DeadLetter,
    /// `durable`: the items are kept in the `[durable]` store; the key's span.
    durable: Option<Span>,
}

enum DeadLetter {
    /// The default: a log line with the item's `Debug` form.
    Log,
    /// A log line without the item.
    LogWithoutItem(Span),
    /// The user's hook.
    Hook(syn::Path),
}

fn validate(args: TokenStream, function: &ItemFn, errors: &mut Errors) -> Model {
    let valid: Vec<&str> = service_args::KEYS
        .iter()
        .chain(QUEUE_KEYS)
        .copied()
        .collect();
    let mut parsed = Args::parse(args, ARGUMENTS, &valid, errors);
    let service = ServiceArgs::take(&mut parsed, errors);
    let queue = take_queue_args(&mut parsed, errors);

    let mut rest = function.sig.clone();
    let item = take_item(&mut rest, errors);
    let hosted = signature::check(&rest, ATTRIBUTE, errors);
    service.refuse_after_self(&function.sig.ident, errors);
    signature::refuse_tick(&hosted, ATTRIBUTE, errors);
    if let Some(item) = &item {
        for param in &hosted.params {
            if same_type(&param.ty, item) {
                errors.spanned(
                    &param.ty,
                    format!(
                        "only the first parameter is the item; `{}` is injected, and `{}` \
                         cannot be: take one item per call, or queue a `Vec` of them",
                        param.label,
                        item.to_token_stream()
                    ),
                );
            }
        }
    }
    Model {
        args: service,
        queue,
        function: hosted,
        item,
    }
}

/// Takes the item parameter out of `sig`, checking its shape.
fn take_item(sig: &mut syn::Signature, errors: &mut Errors) -> Option<Type> {
    let first = match sig.inputs.first() {
        None => {
            errors.at(
                sig.paren_token.span.join(),
                format!(
                    "`{}` takes no item: a `#[queued]` function takes the queue's item as its \
                     first parameter, `async fn {}(item: Email, ...)`",
                    sig.ident, sig.ident
                ),
            );
            return None;
        }
        Some(FnArg::Receiver(_)) => return None, // `signature::check` reports `self`
        Some(FnArg::Typed(typed)) => typed.clone(),
    };
    let pairs = std::mem::take(&mut sig.inputs);
    sig.inputs = pairs.into_iter().skip(1).collect();
    let label = match first.pat.as_ref() {
        Pat::Ident(binding) => binding.ident.to_string(),
        _ => "item".to_owned(),
    };
    match first.ty.as_ref() {
        Type::Reference(reference) => {
            let owned = reference.elem.to_token_stream();
            errors.spanned(
                &first.ty,
                format!(
                    "the item is taken by value: write `{label}: {owned}`; the queue hands each \
                     item over to the function, which owns it"
                ),
            );
            None
        }
        Type::ImplTrait(_) | Type::Infer(_) => {
            errors.spanned(
                &first.ty,
                "name the item's type: it is the type of the queue, `Queue<ItemType>`",
            );
            None
        }
        ty if host_provided(ty).is_some() => {
            let provided = host_provided(ty).unwrap_or_default();
            let later_item = sig.inputs.iter().find_map(|input| match input {
                FnArg::Typed(typed) if host_provided(&typed.ty).is_none() => Some(typed),
                _ => None,
            });
            match later_item {
                Some(item) => errors.spanned(
                    item,
                    format!(
                        "the queue's item must be the first parameter: move `{}: {}` before `{label}: {provided}`",
                        item.pat.to_token_stream(),
                        values::as_written(&item.ty),
                    ),
                ),
                None => errors.spanned(
                    &first.ty,
                    format!(
                        "`{provided}` is given by the host, so it cannot be the queue's item: a \
                         `#[queued]` function takes its item first, `async fn {}(item: Email, {label}: {provided})`",
                        sig.ident
                    ),
                ),
            }
            None
        }
        ty => Some(ty.clone()),
    }
}

/// The name of a type the host injects into every run, when `ty` is one: as a queue's item it
/// is a parameter in the wrong place.
fn host_provided(ty: &Type) -> Option<String> {
    const PROVIDED: &[&str] = &[
        "CancellationToken",
        "ApplicationLifetime",
        "ServiceInfo",
        "ScopeFactory",
        "Tick",
    ];
    let Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    (last.arguments.is_none() && PROVIDED.contains(&last.ident.to_string().as_str()))
        .then(|| last.ident.to_string())
}

/// Whether two types are written alike.
fn same_type(a: &Type, b: &Type) -> bool {
    a.to_token_stream().to_string() == b.to_token_stream().to_string()
}

fn take_queue_args(args: &mut Args, errors: &mut Errors) -> QueueArgs {
    let durable = args.take("durable").and_then(|arg| {
        let on = errors.take(values::bool("durable", &arg.value))?;
        on.then(|| arg.key.span())
    });
    if durable.is_some() {
        for (key, why) in [
            (
                "capacity",
                "a durable queue has no capacity: its items wait in the database",
            ),
            (
                "full_mode",
                "a durable queue is never full: its items wait in the database",
            ),
            (
                "dead_letter",
                "a durable queue keeps its dead letters in the database, with the last error: \
                 list, retry or discard them through `Queue::durable_backend`",
            ),
        ] {
            if let Some(arg) = args.take(key) {
                errors.at(
                    arg.key.span(),
                    format!("`{key}` does not apply with `durable`: {why}"),
                );
            }
        }
    }
    let capacity = args
        .take("capacity")
        .and_then(|arg| {
            at_least_one(
                "capacity",
                &arg,
                "a queue of 0 items could accept nothing",
                errors,
            )
        })
        .unwrap_or(DEFAULT_CAPACITY);
    let workers = args
        .take("workers")
        .and_then(|arg| {
            at_least_one(
                "workers",
                &arg,
                "a queue without workers would never be drained",
                errors,
            )
        })
        .unwrap_or(1);
    let full_mode = args
        .take("full_mode")
        .and_then(|arg| errors.take(values::choice("full_mode", &arg.value, FULL_MODES)))
        .map_or("wait", |(word, _)| word);
    let dead_letter = args
        .take("dead_letter")
        .and_then(|arg| dead_letter(&arg.value, errors))
        .unwrap_or(DeadLetter::Log);
    let (retries, retry_backoff, retry_max_backoff) = take_retries(args, &dead_letter, errors);
    let timeout = args
        .take("timeout")
        .and_then(|arg| errors.take(values::duration("timeout", &arg.value)));
    if let Some((timeout, literal)) = &timeout
        && timeout.is_zero()
    {
        errors.at(
            literal.span(),
            "`timeout` must be greater than zero: every attempt would time out",
        );
    }
    QueueArgs {
        capacity,
        full_mode,
        workers,
        retries,
        retry_backoff,
        retry_max_backoff,
        timeout: timeout.map(|(value, _)| value),
        dead_letter,
        durable,
    }
}

/// `retries` and its backoff keys, checked against each other and the dead letter.
fn take_retries(
    args: &mut Args,
    dead_letter: &DeadLetter,
    errors: &mut Errors,
) -> (u32, Option<Duration>, Option<Duration>) {
    let retries_arg = args.take("retries");
    let retries = retries_arg
        .as_ref()
        .and_then(|arg| errors.take(values::u32("retries", &arg.value)))
        .unwrap_or(0);
    if let (Some(arg), DeadLetter::LogWithoutItem(_)) = (&retries_arg, dead_letter)
        && retries > 0
    {
        errors.spanned(
            &arg.value,
            "items are not kept with `dead_letter = \"log_without_item\"`, so they cannot be \
             retried; remove `retries`, or drop that `dead_letter` to keep a copy of each item",
        );
    }
    let backoff = args.take("retry_backoff");
    let max_backoff = args.take("retry_max_backoff");
    if retries == 0 {
        for (key, arg) in [
            ("retry_backoff", &backoff),
            ("retry_max_backoff", &max_backoff),
        ] {
            if let Some(arg) = arg {
                errors.at(
                    arg.key.span(),
                    format!("`{key}` applies only to retried items; add `retries = 3`"),
                );
            }
        }
    }
    let backoff =
        backoff.and_then(|arg| errors.take(values::duration("retry_backoff", &arg.value)));
    let max_backoff =
        max_backoff.and_then(|arg| errors.take(values::duration("retry_max_backoff", &arg.value)));
    if let Some((ceiling, literal)) = &max_backoff
        && ceiling.is_zero()
    {
        errors.at(
            literal.span(),
            "`retry_max_backoff` must be greater than zero",
        );
    }
    if let Some((first, literal)) = &backoff {
        let ceiling = max_backoff
            .as_ref()
            .map_or(DEFAULT_RETRY_MAX_BACKOFF, |(max, _)| *max);
        if *first > ceiling {
            errors.at(
                literal.span(),
                format!(
                    "`retry_backoff` ({}) is longer than `retry_max_backoff` ({}); lower it or raise `retry_max_backoff`",
                    literal.value(),
                    max_backoff
                        .as_ref()
                        .map_or_else(|| "30s by default".to_owned(), |(_, max): &(Duration, LitStr)| max.value()),
                ),
            );
        }
    }
    (
        retries,
        backoff.map(|(value, _)| value),
        max_backoff.map(|(value, _)| value),
    )
}

/// A count that must be at least 1, reported at its literal.
fn at_least_one(key: &str, arg: &Arg, why: &str, errors: &mut Errors) -> Option<u32> {
    let value = errors.take(values::u32(key, &arg.value))?;
    if value == 0 {
        errors.spanned(&arg.value, format!("`{key}` must be at least 1: {why}"));
        return None;
    }
    Some(value)
}

fn dead_letter(value: &Expr, errors: &mut Errors) -> Option<DeadLetter> {
    match value {
        Expr::Path(path) if path.qself.is_none() && path.attrs.is_empty() => {
            Some(DeadLetter::Hook(path.path.clone()))
        }
        Expr::Lit(_) => {
            let (word, span) =
                errors.take(values::choice("dead_letter", value, DEAD_LETTER_WORDS))?;
            Some(match word {
                "log" => DeadLetter::Log,
                _ => DeadLetter::LogWithoutItem(span),
            })
        }
        other => {
            errors.spanned(
                other,
                "expected the path of an `async fn` taking a `DeadLetter<Item>` \
                 (`dead_letter = park_email`), `\"log\"` or `\"log_without_item\"`",
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Emission.

/// The `QueueOptions` expression, a constant built from the arguments.
fn emit_options(private: &TokenStream, queue: &QueueArgs) -> TokenStream {
    let capacity = queue.capacity as usize;
    let mut options = quote!(#private::QueueOptions::new(#capacity));
    if queue.full_mode != "wait" {
        let variant = match queue.full_mode {
            "reject" => quote!(Reject),
            "drop_oldest" => quote!(DropOldest),
            "drop_newest" => quote!(DropNewest),
            _ => quote!(DropIncoming),
        };
        options.extend(quote!(.with_full_mode(#private::FullMode::#variant)));
    }
    if queue.workers != 1 {
        let workers = queue.workers as usize;
        options.extend(quote!(.with_workers(#workers)));
    }
    if queue.retries != 0 {
        let retries = queue.retries;
        options.extend(quote!(.with_retries(#retries)));
    }
    if let Some(backoff) = queue.retry_backoff {
        let backoff = duration::constructor(backoff);
        options.extend(quote!(.with_retry_backoff(#backoff)));
    }
    if let Some(max) = queue.retry_max_backoff {
        let max = duration::constructor(max);
        options.extend(quote!(.with_retry_max_backoff(#max)));
    }
    if let Some(timeout) = queue.timeout {
        let timeout = duration::constructor(timeout);
        options.extend(quote!(.with_timeout(#timeout)));
    }
    options
}

/// The dead-letter strategy. Its bounds on the item type are reported at the item's type, once,
/// and those on a hook at the hook's path.
fn emit_dead_letters(private: &TokenStream, model: &Model, item: &Type) -> TokenStream {
    match &model.queue.dead_letter {
        DeadLetter::Log => quote_spanned! {item.span()=>
            #private::log_dead_letters::<#item>()
        },
        DeadLetter::Hook(path) => {
            let hook = quote_spanned!(path.span()=> _);
            quote_spanned! {item.span()=>
                #private::hook_dead_letters::<#item, #hook>(#path)
            }
        }
        DeadLetter::LogWithoutItem(span) => quote_spanned! {*span=>
            #private::DeadLetters::<#item>::log_without_item()
        },
    }
}

fn emit(model: &Model, item_fn: &ItemFn) -> TokenStream {
    let Some(item) = &model.item else {
        unreachable!("a missing item is an error");
    };
    let service = service_fn(model, item_fn);
    let private = ServiceFn::private();
    let options = emit_options(&private, &model.queue);
    let mut item_check = quote_spanned! {item.span()=>
        #private::assert_queue_item::<#item>();
    };
    if let Some(durable) = model.queue.durable {
        item_check.extend(quote_spanned! {durable=>
            #private::assert_durable::<()>();
        });
        item_check.extend(quote_spanned! {item.span()=>
            #private::assert_durable_item::<#item>();
        });
    }
    let body = service.body(&[quote!(__hosted_item)]);
    let runner = quote! {
        async fn __hosted_handle(
            __hosted_item: #item,
            __hosted_cx: &#private::RunContext,
        ) -> ::core::result::Result<(), #private::BoxError> {
            #body
        }

        struct __HostedHandler;

        #[automatically_derived]
        impl #private::QueueHandler<#item> for __HostedHandler {
            fn handle<'a>(
                &'a self,
                item: #item,
                cx: &'a #private::RunContext,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<(), #private::BoxError>,
            > + ::core::marker::Send + 'a {
                __hosted_handle(item, cx)
            }
        }
    };
    let name = service.name();
    let descriptor = if model.queue.durable.is_some() {
        quote! {
            #private::durable_queued::<#item, __HostedHandler>(#name, #options, __HostedHandler)
        }
    } else {
        let dead_letters = emit_dead_letters(&private, model, item);
        quote! {
            #private::ServiceDescriptor::queued(#name, #options, __HostedHandler, #dead_letters)
        }
    };
    service.emit(&[quote!(__hosted_item)], &runner, &descriptor, &item_check)
}

fn service_fn<'a>(model: &'a Model, item: &'a ItemFn) -> ServiceFn<'a> {
    ServiceFn {
        args: &model.args,
        function: &model.function,
        item,
    }
}
