"""Back ends: the IR (``tracer.ir``) lowered through LLVM to native CPU code
(``codegen.cpu``) or to PTX for NVIDIA GPUs (``codegen.cuda``). Only ``tracer.ir`` and
``tracer.dtypes`` are imported from the front end."""
