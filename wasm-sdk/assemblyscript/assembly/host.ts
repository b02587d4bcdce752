// The host imports (ABI.md, "Host imports").

@external("sidetrace", "log")
export declare function hostLog(level: i32, ptr: usize, len: usize): void;

@external("sidetrace", "get_header")
export declare function hostGetHeader(which: i32, namePtr: usize, nameLen: usize, bufPtr: usize, bufLimit: usize): i32;
