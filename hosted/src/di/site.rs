//! The one call through which generated code reaches [`Inject`] for every parameter and field.
//!
//! The attributes never write a parameter's type again: they call [`inject`] at each site where
//! a value is declared, built without awaiting, or built awaiting, and rustc infers the type
//! from the user's own signature. A type that is not injectable is then one error, at the
//! user's type, with the same text at every site — rustc prints it once — and a misspelt type
//! is reported only where the user wrote it.

use std::future::Future;

use super::{Dependencies, Inject, InjectError, RunContext};

/// Where [`inject`] is called: declaring what a consumer needs (before anything starts), or
/// building the value for one run, without awaiting or awaiting.
#[derive(Debug)]
pub enum InjectSite<'d, 'cx> {
    /// Records what the value needs ([`Inject::declare`]).
    Declare(&'d mut Dependencies),
    /// Builds the value without awaiting, when it can be ([`Inject::inject_now`]).
    Now(&'cx RunContext),
    /// Builds the value, awaiting ([`Inject::inject`]).
    Later(&'cx RunContext),
}

/// What [`inject`] did at its site: the value built without awaiting, or the future building it.
#[derive(Debug)]
#[must_use = "an injection does nothing until its value is taken"]
pub struct Injection<T, F> {
    now: Option<Result<T, InjectError>>,
    later: Option<F>,
}

impl<T, F> Injection<T, F> {
    /// At [`InjectSite::Now`]: the value, or `None` when building it needs to await.
    pub fn now(self) -> Option<Result<T, InjectError>> {
        self.now
    }

    /// At [`InjectSite::Later`]: the future building the value.
    ///
    /// # Panics
    /// At any other site, which has no future.
    pub fn later(self) -> F {
        match self.later {
            Some(future) => future,
            None => unreachable!("`Injection::later` is only taken at `InjectSite::Later`"),
        }
    }

    /// Names the value's type without building one, for code that only needs the type (the
    /// generated declarations tie each value to the parameter it is for, in a closure never
    /// called).
    ///
    /// # Panics
    /// Always: it must never be called.
    pub fn never_called(&self) -> T {
        unreachable!("`Injection::never_called` is only named, never called")
    }
}

/// Injects one value of type `T` at `site`.
///
/// An error "required by a bound in `hosted::di::inject`" means the parameter's or field's type
/// is not [`Inject`]: the message above it says why and what to do.
pub fn inject<'cx, T: Inject>(
    site: InjectSite<'_, 'cx>,
) -> Injection<T, impl Future<Output = Result<T, InjectError>> + Send + use<'cx, T>> {
    match site {
        InjectSite::Declare(needs) => {
            T::declare(needs);
            Injection {
                now: None,
                later: None,
            }
        }
        InjectSite::Now(cx) => Injection {
            now: T::inject_now(cx),
            later: None,
        },
        InjectSite::Later(cx) => Injection {
            now: None,
            later: Some(T::inject(cx)),
        },
    }
}

/// Not public API, used by generated code: what a registered value must be, as one rule with
/// one message (rustc would otherwise report `Send` and `Sync` apart, at every bound).
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be registered: it must be `Send + Sync + 'static`",
    label = "shared between threads for as long as it lives",
    note = "a registered value is shared by every run that resolves it, on any of the host's threads: use `Arc` instead of `Rc`, a `Mutex` or atomics instead of `Cell`/`RefCell`, and owned data instead of references"
)]
pub trait Shareable: Send + Sync + 'static {}

#[diagnostic::do_not_recommend]
impl<T: ?Sized + Send + Sync + 'static> Shareable for T {}

/// Not public API, used by generated code: checks, at a factory's return type (and at its
/// `as` type), that a registered value can be shared between threads for the life of the host.
/// Public here so a compile error names it `hosted::di::provided`.
#[doc(hidden)]
pub const fn provided<T: ?Sized + Shareable>() {}
