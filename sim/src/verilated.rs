//! The Verilator models, behind a safe wrapper.

use crate::backend::Backend;
use crate::ports::{network_interface, protection_core, serial_board};
use crate::SimError;
use npmu_abi::Config;
use std::ffi::{c_char, c_void, CString};
use std::marker::PhantomData;
use std::path::Path;
use std::ptr::NonNull;

/// The shim's entry points for one model.
pub struct Functions<I, O> {
    new: unsafe extern "C" fn() -> *mut c_void,
    delete: unsafe extern "C" fn(*mut c_void),
    settle: unsafe extern "C" fn(*mut c_void, *const I, *mut O),
    rising_edge: unsafe extern "C" fn(*mut c_void),
    trace_open: unsafe extern "C" fn(*mut c_void, *const c_char) -> bool,
    trace_close: unsafe extern "C" fn(*mut c_void),
}

/// A top module the simulator builds, with a model per configuration.
pub trait Top {
    type Inputs: Default;
    type Outputs: Default;
    fn functions(config: &str) -> Option<Functions<Self::Inputs, Self::Outputs>>;
}

macro_rules! tops {
    ($($top:ident ($inputs:ty, $outputs:ty): $($config:literal => $new:ident, $delete:ident,
        $settle:ident, $rising_edge:ident, $trace_open:ident, $trace_close:ident;)*)*) => {
        extern "C" {
            $($(
                fn $new() -> *mut c_void;
                fn $delete(handle: *mut c_void);
                fn $settle(handle: *mut c_void, inputs: *const $inputs, outputs: *mut $outputs);
                fn $rising_edge(handle: *mut c_void);
                fn $trace_open(handle: *mut c_void, path: *const c_char) -> bool;
                fn $trace_close(handle: *mut c_void);
            )*)*
        }

        $(
            impl Top for $top {
                type Inputs = $inputs;
                type Outputs = $outputs;
                fn functions(config: &str) -> Option<Functions<$inputs, $outputs>> {
                    match config {
                        $($config => Some(Functions {
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
            }
        )*
    };
}

/// `npmu_core`.
pub struct CoreTop;
/// `npmu_ni`.
pub struct NetworkInterfaceTop;
/// `npmu_board`.
pub struct BoardTop;

tops! {
    CoreTop (protection_core::Inputs, protection_core::Outputs):
        "sim" => npmu_core_sim_new, npmu_core_sim_delete, npmu_core_sim_settle,
            npmu_core_sim_rising_edge, npmu_core_sim_trace_open, npmu_core_sim_trace_close;
        "ice40" => npmu_core_ice40_new, npmu_core_ice40_delete, npmu_core_ice40_settle,
            npmu_core_ice40_rising_edge, npmu_core_ice40_trace_open, npmu_core_ice40_trace_close;
    NetworkInterfaceTop (network_interface::Inputs, network_interface::Outputs):
        "sim" => npmu_ni_sim_new, npmu_ni_sim_delete, npmu_ni_sim_settle,
            npmu_ni_sim_rising_edge, npmu_ni_sim_trace_open, npmu_ni_sim_trace_close;
        "ice40" => npmu_ni_ice40_new, npmu_ni_ice40_delete, npmu_ni_ice40_settle,
            npmu_ni_ice40_rising_edge, npmu_ni_ice40_trace_open, npmu_ni_ice40_trace_close;
    BoardTop (serial_board::Inputs, serial_board::Outputs):
        "sim" => npmu_board_sim_new, npmu_board_sim_delete, npmu_board_sim_settle,
            npmu_board_sim_rising_edge, npmu_board_sim_trace_open, npmu_board_sim_trace_close;
        "ice40" => npmu_board_ice40_new, npmu_board_ice40_delete, npmu_board_ice40_settle,
            npmu_board_ice40_rising_edge, npmu_board_ice40_trace_open,
            npmu_board_ice40_trace_close;
}

/// One Verilator model with its own Verilator context, so models in different threads
/// run independently.
pub struct Verilated<T: Top> {
    handle: NonNull<c_void>,
    functions: Functions<T::Inputs, T::Outputs>,
    config: Config,
    tracing: bool,
    top: PhantomData<T>,
}

/// The protection core under Verilator.
pub type VerilatedCore = Verilated<CoreTop>;
/// The whole NI under Verilator.
pub type VerilatedNetworkInterface = Verilated<NetworkInterfaceTop>;
/// The protection core behind its serial bridge under Verilator.
pub type VerilatedBoard = Verilated<BoardTop>;

// Each model owns its VerilatedContext and is used from one thread at a time.
unsafe impl<T: Top> Send for Verilated<T> {}

impl<T: Top> Verilated<T> {
    pub fn new(config: &Config) -> Result<Self, SimError> {
        let functions = T::functions(config.name)
            .filter(|_| Config::ALL.contains(config))
            .ok_or_else(|| SimError::UnsupportedConfig(config.name.to_owned()))?;
        // SAFETY: the shim allocates a model and its context, never returning null.
        let handle = NonNull::new(unsafe { (functions.new)() }).expect("the shim returns a model");
        Ok(Self {
            handle,
            functions,
            config: *config,
            tracing: false,
            top: PhantomData,
        })
    }
}

impl<T: Top> Backend for Verilated<T> {
    type Inputs = T::Inputs;
    type Outputs = T::Outputs;

    fn config(&self) -> &Config {
        &self.config
    }

    fn settle(&mut self, inputs: &T::Inputs) -> T::Outputs {
        let mut outputs = T::Outputs::default();
        // SAFETY: the handle is live; the structs are the shim's, field for field.
        unsafe { (self.functions.settle)(self.handle.as_ptr(), inputs, &mut outputs) };
        outputs
    }

    fn rising_edge(&mut self) {
        // SAFETY: the handle is live.
        unsafe { (self.functions.rising_edge)(self.handle.as_ptr()) };
    }

    fn trace_to(&mut self, path: &Path) -> Result<(), SimError> {
        let text = path.to_string_lossy().into_owned();
        let c_path = CString::new(text.clone()).map_err(|_| SimError::Waveform(text.clone()))?;
        // SAFETY: the handle is live and the path a NUL-terminated string.
        let opened = unsafe { (self.functions.trace_open)(self.handle.as_ptr(), c_path.as_ptr()) };
        self.tracing = opened;
        opened.then_some(()).ok_or(SimError::Waveform(text))
    }
}

impl<T: Top> Drop for Verilated<T> {
    fn drop(&mut self) {
        // SAFETY: the handle is live and dropped once; the shim closes an open trace.
        unsafe {
            if self.tracing {
                (self.functions.trace_close)(self.handle.as_ptr());
            }
            (self.functions.delete)(self.handle.as_ptr());
        }
    }
}
