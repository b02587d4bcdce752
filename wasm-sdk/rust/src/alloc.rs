//! A small allocator for wasm32 plugins, installed as the global allocator: power-of-two size
//! classes from 16 bytes, each with a free list, carved from memory above `__heap_base` and
//! grown with `memory.grow`. A plugin allocates the same few sizes on every call, so freed blocks
//! are reused at once; nothing is returned to the host (wasm memory cannot shrink).

#[cfg(target_arch = "wasm32")]
mod imp {
    use core::alloc::{GlobalAlloc, Layout};
    use core::arch::wasm32;

    const PAGE: usize = 65536;
    const MIN_CLASS: usize = 4; // 16 bytes

    /// The allocator (see the module documentation).
    pub struct Allocator;

    static mut FREE: [usize; 32] = [0; 32]; // free-list heads, by log2 of the block size
    static mut TOP: usize = 0; // next unused byte
    static mut END: usize = 0; // end of memory

    extern "C" {
        static __heap_base: u8;
    }

    fn class(l: &Layout) -> usize {
        let size = l.size().max(l.align()).max(1 << MIN_CLASS);
        size.next_power_of_two().trailing_zeros() as usize
    }

    unsafe fn carve(k: usize) -> *mut u8 {
        if END == 0 {
            TOP = core::ptr::addr_of!(__heap_base) as usize;
            END = wasm32::memory_size(0) * PAGE;
        }
        let size = 1usize << k;
        let align = size.min(PAGE);
        let p = (TOP + align - 1) & !(align - 1);
        if p + size > END {
            let pages = (p + size - END + PAGE - 1) / PAGE;
            if wasm32::memory_grow(0, pages) == usize::MAX {
                return core::ptr::null_mut();
            }
            END += pages * PAGE;
        }
        TOP = p + size;
        p as *mut u8
    }

    unsafe impl GlobalAlloc for Allocator {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let k = class(&l);
            if k >= 32 {
                return core::ptr::null_mut();
            }
            let head = FREE[k];
            if head != 0 {
                FREE[k] = *(head as *const usize);
                return head as *mut u8;
            }
            carve(k)
        }

        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            let k = class(&l);
            *(p as *mut usize) = FREE[k];
            FREE[k] = p as usize;
        }

        unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
            let nl = Layout::from_size_align_unchecked(new_size, l.align());
            if class(&nl) == class(&l) {
                return p;
            }
            let q = self.alloc(nl);
            if !q.is_null() {
                core::ptr::copy_nonoverlapping(p, q, l.size().min(new_size));
                self.dealloc(p, l);
            }
            q
        }
    }

    #[global_allocator]
    static GLOBAL: Allocator = Allocator;
}
