//! The Verilator model of the NI, behind a safe wrapper.

use crate::backend::Backend;
use crate::ports::{Inputs, Outputs};
use crate::SimError;
use npmu_abi::Config;
use std::ffi::{c_char, c_void, CString};
use std::path::Path;
use std::ptr::NonNull;

/// The shim's entry points for one configuration's model.
struct Model {
    new: unsafe extern "C" fn() -> *mut c_void,
    delete: unsafe extern "C" fn(*mut c_void),
    settle: unsafe extern "C" fn(*mut c_void, *const Inputs, *mut Outputs),
    rising_edge: unsafe extern "C" fn(*mut c_void),
    trace_open: unsafe extern "C" fn(*mut c_void, *const c_char) -> bool,
    trace_close: unsafe extern "C" fn(*mut c_void),
}

macro_rules! models {
    ($($name:literal => $new:ident, $delete:ident, $settle:ident, $rising_edge:ident,
       $trace_open:ident, $trace_close:ident;)*) => {
        extern "C" {
            $(
                fn $new() -> *mut c_void;
                fn $delete(handle: *mut c_void);
                fn $settle(handle: *mut c_void, inputs: *const Inputs, outputs: *mut Outputs);
                fn $rising_edge(handle: *mut c_void);
                fn $trace_open(handle: *mut c_void, path: *const c_char) -> bool;
                fn $trace_close(handle: *mut c_void);
            )*
        }

        fn model(name: &str) -> Option<Model> {
            match name {
                $($name => Some(Model {
                    new: $new,
                    delete: $delete,
                    settle: $settle,
                    rising_edge: $rising_edge,
                    trace_open: $trace_open,
                    trace_close: $trace_close,
                }),)*
                _ => None,
            }
        }
    };
}

models! {
    "sim" => npmu_ni_sim_new, npmu_ni_sim_delete, npmu_ni_sim_settle, npmu_ni_sim_rising_edge,
        npmu_ni_sim_trace_open, npmu_ni_sim_trace_close;
    "ice40" => npmu_ni_ice40_new, npmu_ni_ice40_delete, npmu_ni_ice40_settle,
        npmu_ni_ice40_rising_edge, npmu_ni_ice40_trace_open, npmu_ni_ice40_trace_close;
}

/// One Verilator model of the NI, with its own Verilator context, so models in different
/// threads run independently.
pub struct VerilatedNetworkInterface {
    handle: NonNull<c_void>,
    model: Model,
    config: Config,
    tracing: bool,
}

// Each model owns its VerilatedContext and is used from one thread at a time.
unsafe impl Send for VerilatedNetworkInterface {}

impl VerilatedNetworkInterface {
    pub fn new(config: &Config) -> Result<Self, SimError> {
        let model = model(config.name)
            .filter(|_| Config::ALL.contains(config))
            .ok_or_else(|| SimError::UnsupportedConfig(config.name.to_owned()))?;
        // SAFETY: the shim allocates a model and its context, never returning null.
        let handle = NonNull::new(unsafe { (model.new)() }).expect("the shim returns a model");
        Ok(Self {
            handle,
            model,
            config: *config,
            tracing: false,
        })
    }
}

impl Backend for VerilatedNetworkInterface {
    fn config(&self) -> &Config {
        &self.config
    }

    fn settle(&mut self, inputs: &Inputs) -> Outputs {
        let mut outputs = Outputs::default();
        // SAFETY: the handle is live; the structs are the shim's, field for field.
        unsafe { (self.model.settle)(self.handle.as_ptr(), inputs, &mut outputs) };
        outputs
    }

    fn rising_edge(&mut self) {
        // SAFETY: the handle is live.
        unsafe { (self.model.rising_edge)(self.handle.as_ptr()) };
    }

    fn trace_to(&mut self, path: &Path) -> Result<(), SimError> {
        let text = path.to_string_lossy().into_owned();
        let c_path = CString::new(text.clone()).map_err(|_| SimError::Waveform(text.clone()))?;
        // SAFETY: the handle is live and the path a NUL-terminated string.
        let opened = unsafe { (self.model.trace_open)(self.handle.as_ptr(), c_path.as_ptr()) };
        self.tracing = opened;
        opened.then_some(()).ok_or(SimError::Waveform(text))
    }
}

impl Drop for VerilatedNetworkInterface {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once; the shim closes an open trace.
        unsafe {
            if self.tracing {
                (self.model.trace_close)(self.handle.as_ptr());
            }
            (self.model.delete)(self.handle.as_ptr());
        }
    }
}
