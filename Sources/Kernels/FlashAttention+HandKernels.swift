import CVectorKernels

/// The hand-vectorised tile loops (`CVectorKernels/flash_attention.c`): the Swift side splits the
/// work over threads and packs each head's keys and values; the C side runs one block of query
/// rows of one head at a time.
extension FlashAttention.Call {
    /// Query rows per block of the hand-vectorised tiles.
    static var handQueryBlock: Int { Int(LM_FLASH_QUERY_BLOCK) }

    /// One thread's part of the workspace: the C tiles, then room for one head's packed K, V,
    /// dK and dV (`keyLength × headDim` each).
    struct HandWorkspace {
        let tiles: UnsafeMutablePointer<Float>
        let keys: UnsafeMutablePointer<Float>
        let values: UnsafeMutablePointer<Float>
        let keyGradients: UnsafeMutablePointer<Float>
        let valueGradients: UnsafeMutablePointer<Float>

        init(_ base: UnsafeMutablePointer<Float>, dims: AttentionDims) {
            let head = dims.keyLength * dims.headDim
            tiles = base
            keys = base + lm_flash_attention_workspace()
            values = keys + head
            keyGradients = values + head
            valueGradients = keyGradients + head
        }
    }

    /// The forward on the hand-vectorised tiles. Items are (batch, head, query block) in that
    /// order, dealt out interleaved (thread t of n takes items t, t + n, …), so every thread gets
    /// early (cheap) and late (costly) blocks of every head; a thread packs a key/value head when
    /// its next item needs another one (consecutive heads of a group share it).
    func forwardByHand(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        out: UnsafeMutablePointer<Float>, outputLayout: HeadLayout, logSumExp: UnsafeMutablePointer<Float>
    ) {
        let (d, group, block) = (dims.headDim, dims.heads / dims.kvHeads, Self.handQueryBlock)
        let blocks = (dims.queryLength + block - 1) / block
        let items = dims.batch * dims.heads * blocks
        runTasks(items: items) { task, tasks, base in
            let space = HandWorkspace(base, dims: dims)
            var held: (batch: Int, kvHead: Int)?  // the key/value head packed in `space`
            for item in stride(from: task, to: items, by: tasks) {
                let (pair, queryBlock) = item.quotientAndRemainder(dividingBy: blocks)
                let (b, h) = pair.quotientAndRemainder(dividingBy: dims.heads)
                let kvHead = h / group
                if held?.batch != b || held?.kvHead != kvHead {
                    let offset = b * keyLayout.batchStride + kvHead * d
                    lm_flash_pack_rows(k + offset, keyLayout.rowStride, dims.keyLength, d, space.keys)
                    lm_flash_pack_rows(v + offset, keyLayout.rowStride, dims.keyLength, d, space.values)
                    held = (b, kvHead)
                }
                let first = queryBlock * block, rows = min(block, dims.queryLength - first)
                lm_flash_forward_block(q + b * queryLayout.batchStride + first * queryLayout.rowStride + h * d, queryLayout.rowStride,
                                       space.keys, space.values,
                                       out + b * outputLayout.batchStride + first * outputLayout.rowStride + h * d, outputLayout.rowStride,
                                       logSumExp + pair * dims.queryLength + first, rows, d, queryOffset + first + 1, alpha, space.tiles)
            }
        }
    }

    /// The backward on the hand-vectorised tiles: one item per (batch, key/value head), whose
    /// thread packs K and V, accumulates dK and dV packed over every query block of the group's
    /// heads, and adds them into dK and dV once.
    func backwardByHand(
        q: UnsafePointer<Float>, queryLayout: HeadLayout,
        k: UnsafePointer<Float>, v: UnsafePointer<Float>, keyLayout: HeadLayout,
        out: UnsafePointer<Float>, dOut: UnsafePointer<Float>, outputLayout: HeadLayout, logSumExp: UnsafePointer<Float>,
        dQ: UnsafeMutablePointer<Float>, dK: UnsafeMutablePointer<Float>, dV: UnsafeMutablePointer<Float>
    ) {
        let (d, group, block) = (dims.headDim, dims.heads / dims.kvHeads, Self.handQueryBlock)
        run(items: dims.batch * dims.kvHeads) { item, base in
            let space = HandWorkspace(base, dims: dims)
            let (b, kvHead) = item.quotientAndRemainder(dividingBy: dims.kvHeads)
            let offset = b * keyLayout.batchStride + kvHead * d, head = dims.keyLength * d
            lm_flash_pack_rows(k + offset, keyLayout.rowStride, dims.keyLength, d, space.keys)
            lm_flash_pack_rows(v + offset, keyLayout.rowStride, dims.keyLength, d, space.values)
            space.keyGradients.update(repeating: 0, count: head)
            space.valueGradients.update(repeating: 0, count: head)
            for h in (kvHead * group)..<((kvHead + 1) * group) {
                let pair = b * dims.heads + h
                var first = 0
                while first < dims.queryLength {
                    let rows = min(block, dims.queryLength - first)
                    let queryAt = b * queryLayout.batchStride + first * queryLayout.rowStride + h * d
                    let outputAt = b * outputLayout.batchStride + first * outputLayout.rowStride + h * d
                    lm_flash_backward_block(q + queryAt, queryLayout.rowStride, space.keys, space.values,
                                            out + outputAt, dOut + outputAt, outputLayout.rowStride,
                                            logSumExp + pair * dims.queryLength + first, dQ + queryAt,
                                            space.keyGradients, space.valueGradients, rows, d, queryOffset + first + 1, alpha, space.tiles)
                    first += rows
                }
            }
            lm_flash_add_rows(space.keyGradients, dims.keyLength, d, dK + offset, keyLayout.rowStride)
            lm_flash_add_rows(space.valueGradients, dims.keyLength, d, dV + offset, keyLayout.rowStride)
        }
    }
}
